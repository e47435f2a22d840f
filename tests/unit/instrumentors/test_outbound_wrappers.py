"""The urllib3, urllib and aiohttp instrumentors wrap one method each and restore it."""

from __future__ import annotations

import urllib.request
from typing import Any

import aiohttp
import pytest
import urllib3.connectionpool

from posthog_otel.instrumentors.aiohttp_client import PosthogAiohttpClientInstrumentor
from posthog_otel.instrumentors.urllib import PosthogUrllibInstrumentor
from posthog_otel.instrumentors.urllib3 import PosthogUrllib3Instrumentor

CASES = [
    (PosthogUrllib3Instrumentor, urllib3.connectionpool.HTTPConnectionPool, "_make_request"),
    (PosthogUrllibInstrumentor, urllib.request.AbstractHTTPHandler, "do_open"),
    (PosthogAiohttpClientInstrumentor, aiohttp.ClientRequest, "send"),
]


@pytest.mark.parametrize(("instrumentor", "owner", "name"), CASES)
def test_instrument_wraps_and_uninstrument_restores(
    instrumentor: Any, owner: Any, name: str
) -> None:
    original = owner.__dict__[name]
    instrumentor().instrument()
    try:
        wrapped = owner.__dict__[name]
        assert wrapped is not original and wrapped.__wrapped__ is original
        instrumentor().instrument()  # a second call does not wrap twice
        assert owner.__dict__[name] is wrapped
    finally:
        instrumentor().uninstrument()
    assert owner.__dict__[name] is original


@pytest.mark.parametrize(("instrumentor", "owner", "name"), CASES)
def test_invalid_options_raise(instrumentor: Any, owner: Any, name: str) -> None:
    with pytest.raises(ValueError):
        instrumentor().instrument(propagation_targets=["re:("])
    instrumentor().uninstrument()
    assert not hasattr(owner.__dict__[name], "__wrapped__")
