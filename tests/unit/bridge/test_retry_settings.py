"""``--max-retries``: how long the bridge keeps retrying one upload to PostHog (while its full
queue answers 429) before dropping it."""

from __future__ import annotations

import pytest

from posthog_otel.bridge.settings import BridgeSettings
from posthog_otel.cli import _parser
from posthog_otel.client import Client


def test_default_rides_out_minutes_not_seconds() -> None:
    settings = BridgeSettings.build(api_key="phc_test", environ={})
    assert settings.max_retries == 10
    client = Client("phc_test", host="http://127.0.0.1:9", **settings.client_options())
    try:
        assert client.settings.max_retries == 10
    finally:
        client.shutdown()


def test_flag_reaches_the_settings() -> None:
    args = _parser().parse_args(["bridge", "--max-retries", "0"])
    assert args.max_retries == 0
    assert (
        BridgeSettings.build(api_key="k", environ={}, max_retries=0).client_options()["max_retries"]
        == 0
    )


@pytest.mark.parametrize("value", [-1, 1001, 2.5, True])
def test_out_of_range_is_refused_by_name(value: object) -> None:
    with pytest.raises(ValueError, match="max_retries"):
        BridgeSettings.build(api_key="k", environ={}, max_retries=value)
