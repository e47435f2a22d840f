"""The one OTLP/HTTP sender both exports use (``OtlpExport``): only PostHog's credentials go out,
and a 200 answer's ``partial_success`` is counted, for traces and logs alike.

Real SDK providers, the real export threads, a real loopback receiver."""

from __future__ import annotations

import logging
import socket
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk.trace import TracerProvider

from posthog_otel import Client
from posthog_otel.config import ClientSettings
from posthog_otel.logs.processor import PosthogLogProcessor
from posthog_otel.otlp.responses import JSON, PROTOBUF, export_response, read_export_response
from tests.support.otlp_receiver import LOGS, TRACES, Answer, OtlpReceiver
from tests.support.otlp_receiver import partial_success as partial_answer

KEY = "phc_otlp_export"


@pytest.fixture
def server() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def _send_spans(server: OtlpReceiver, count: int) -> dict[str, Any]:
    provider = TracerProvider()
    client = Client(KEY, host=server.url, timeout=2, shutdown_timeout=2)
    try:
        assert client.enable_traces({"flush_interval": 0.05}, tracer_provider=provider)
        tracer = provider.get_tracer("app")
        for index in range(count):
            with tracer.start_as_current_span(f"span {index}"):
                pass
        assert client.flush(5)
        stats: dict[str, Any] = client.stats()["traces"]
        stats["sent"] = stats["exported"]
        return stats
    finally:
        client.shutdown(2)
        provider.shutdown()


def _send_records(server: OtlpReceiver, count: int) -> dict[str, Any]:
    settings = ClientSettings.build(KEY, server.url, flush_interval=0.05, timeout=2)
    processor = PosthogLogProcessor(settings)
    provider = LoggerProvider()
    provider.add_log_record_processor(processor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    logger = logging.getLogger("shop.export")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for index in range(count):
            logger.warning("record %d", index)
        assert processor.force_flush(5_000)
        return processor.stats()
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        provider.shutdown()


SIGNALS: dict[str, tuple[str, Callable[[OtlpReceiver, int], dict[str, Any]]]] = {
    "traces": (TRACES, _send_spans),
    "logs": (LOGS, _send_records),
}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("signal", list(SIGNALS))
def test_no_credentials_from_the_environment_reach_posthog(
    signal: str, server: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, send = SIGNALS[signal]
    # meant for the app's own backend, or for other hosts: none of it may reach PostHog
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-honeycomb-team=secret-team")
    monkeypatch.setenv(f"OTEL_EXPORTER_OTLP_{signal.upper()}_HEADERS", "authorization=Basic xx")
    proxy = f"http://proxy-user:proxy-secret@127.0.0.1:{_closed_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    stats = send(server, 2)
    assert stats["sent"] == 2, stats  # straight to PostHog: the proxy (a closed port) unused
    (request,) = [r for r in server.requests if r.path == path]
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "application/x-protobuf"
    assert set(headers) <= {
        "host",
        "user-agent",
        "accept-encoding",
        "accept",
        "connection",
        "content-length",
        "content-type",
        "content-encoding",
        "authorization",
    }
    assert "secret" not in repr(headers)


@pytest.mark.parametrize("signal", list(SIGNALS))
def test_partial_success_counts_rejected_items(signal: str, server: OtlpReceiver) -> None:
    path, send = SIGNALS[signal]
    server.script(Answer(200, body=partial_answer(path, 2, "2 items had invalid timestamps")))
    stats = send(server, 5)
    assert stats["sent"] == 3, stats
    assert stats["dropped"] == {"rejected": 2}
    assert "invalid timestamps" in stats["last_error"]


def test_partial_success_reads_protobuf_and_json_answers() -> None:
    assert read_export_response(partial_answer(TRACES, 4, "too old")) == (4, "too old")
    assert read_export_response(partial_answer(LOGS, 1, "")) == (1, "")
    for kind in (PROTOBUF, JSON):  # what the sink and the bridge answer, read back
        assert read_export_response(export_response("logs", kind, 3, "bad")) == (3, "bad")
    deep_json = b"{" + b'"a":{' * 100_000  # nested past the decoder's recursion limit
    for accepted in (b"", b"{}", b"\x0a\x00", b"not protobuf \xff", b"\x0a\x05\x08", deep_json):
        assert read_export_response(accepted) == (0, "")
