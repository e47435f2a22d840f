"""Logs export behind the root logger: one handler (ours, or the app's shared), ``basicConfig``
still working afterwards, the instrumentor's ``logs=True`` / ``POSTHOG_OTEL_LOGS`` and the
client's ``stats()``/``flush()``/``shutdown()`` covering the logs."""

from __future__ import annotations

import contextlib
import io
import logging
import logging.config
import warnings
from collections.abc import Iterator

import pytest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

import posthog_otel as posthog
from posthog_otel import Client, PosthogInstrumentor, global_client
from posthog_otel.logs.install import install, threshold
from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver

KEY = "phc_logs_install"


@pytest.fixture
def server() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


@pytest.fixture
def bare_root() -> Iterator[logging.Logger]:
    """The root logger without handlers (pytest's own put back afterwards), level WARNING.

    pytest adds its capturing handlers when the test body starts, after fixtures: tests that
    need a root logger without them use :func:`_without_pytest_handlers` inside."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    yield root
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@contextlib.contextmanager
def _without_pytest_handlers(root: logging.Logger) -> Iterator[None]:
    theirs = [h for h in root.handlers if type(h).__module__.startswith("_pytest")]
    for handler in theirs:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in theirs:
            root.addHandler(handler)


def _otel_handlers(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if isinstance(h, LoggingHandler)]


def test_one_handler_of_ours_and_basicconfig_still_configures_the_console(
    server: OtlpReceiver, bare_root: logging.Logger
) -> None:
    client = Client(KEY, host=server.url, flush_interval=0.05)
    installed = install(client, level="INFO")
    assert installed is not None and not installed.shared
    console = io.StringIO()
    try:
        with _without_pytest_handlers(bare_root):
            assert bare_root.handlers == [installed.handler]
            assert installed.handler is not None and installed.handler.level == logging.INFO
            # the app configures logging after instrumenting: not a no-op, and ours stays
            logging.basicConfig(level=logging.INFO, stream=console, format="%(message)s")
            assert bare_root.level == logging.INFO
            assert _otel_handlers(bare_root) == [installed.handler]
            assert len(bare_root.handlers) == 2
            logging.getLogger("install_app").info("to both")
            logging.getLogger("install_app").debug("to neither")
            assert console.getvalue() == "to both\n"
            assert installed.processor.force_flush(5_000)
            assert [row.body for row in server.wait_for_records(1)] == ["to both"]
            logging.config.dictConfig(
                {
                    "version": 1,
                    "disable_existing_loggers": False,
                    "root": {"level": "INFO", "handlers": []},
                }
            )
            assert bare_root.handlers == [installed.handler]  # dictConfig kept ours too
    finally:
        installed.uninstall()
        client.shutdown(0)
    assert _otel_handlers(bare_root) == []
    assert logging.basicConfig.__module__ == "logging"  # the original is back
    assert logging.basicConfig.__name__ == "basicConfig"
    assert not hasattr(logging.basicConfig, "__wrapped__")


def test_an_otel_handler_already_on_the_root_logger_is_shared_not_doubled(
    server: OtlpReceiver, bare_root: logging.Logger
) -> None:
    apps_provider = LoggerProvider()
    apps_exporter = InMemoryLogRecordExporter()
    apps_provider.add_log_record_processor(SimpleLogRecordProcessor(apps_exporter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        apps_handler = LoggingHandler(logger_provider=apps_provider)
    bare_root.addHandler(apps_handler)
    client = Client(KEY, host=server.url, flush_interval=0.05)
    installed = install(client)
    assert installed is not None and installed.shared
    try:
        assert _otel_handlers(bare_root) == [apps_handler]
        with posthog.new_context():
            posthog.identify_context("shared-user")
            logging.getLogger("install_app").warning("once")
        assert installed.processor.force_flush(5_000)
        (row,) = server.wait_for_records(1)
    finally:
        installed.uninstall()
        client.shutdown(0)
        apps_provider.shutdown()
    assert row.body == "once" and row.attributes["posthogDistinctId"] == "shared-user"
    assert len(server.records()) == 1
    (seen,) = apps_exporter.get_finished_logs()  # the app's own pipeline: unchanged
    assert "posthogDistinctId" not in (seen.log_record.attributes or {})
    assert _otel_handlers(bare_root) == [apps_handler]  # the app's handler stays


def test_a_client_that_cannot_send_exports_no_logs(bare_root: logging.Logger) -> None:
    client = Client(None)
    assert install(client) is None
    assert _otel_handlers(bare_root) == []


def test_the_threshold_from_the_option_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("POSTHOG_OTEL_LOGS_LEVEL", raising=False)
    assert threshold() == logging.INFO
    assert threshold("warning") == logging.WARNING
    assert threshold(15) == 15
    with pytest.raises(ValueError, match="logs_level"):
        threshold("loud")
    monkeypatch.setenv("POSTHOG_OTEL_LOGS_LEVEL", "ERROR")
    assert threshold() == logging.ERROR
    monkeypatch.setenv("POSTHOG_OTEL_LOGS_LEVEL", "chatty")
    with caplog.at_level(logging.WARNING, "posthog.otel"):
        assert threshold() == logging.INFO
    assert "POSTHOG_OTEL_LOGS_LEVEL" in caplog.text


@pytest.mark.parametrize("how", ["option", "environment"])
def test_the_instrumentor_turns_logs_on_and_the_client_counts_and_flushes_them(
    how: str,
    instrumentor: PosthogInstrumentor,
    server: OtlpReceiver,
    bare_root: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options: dict[str, object] = {"logs": True} if how == "option" else {}
    if how == "environment":
        monkeypatch.setenv("POSTHOG_OTEL_LOGS", "true")
        monkeypatch.setenv("POSTHOG_OTEL_LOGS_LEVEL", "WARNING")
    else:
        options["logs_level"] = "WARNING"
    instrumentor.instrument(
        api_key=KEY,
        host=server.url,
        tracer_provider=TracerProvider(),
        instrument_libraries=False,
        flush_interval=5.0,  # only an explicit flush sends within the test
        **options,
    )
    assert len(_otel_handlers(bare_root)) == 1
    logging.getLogger("install_app").warning("counted")
    logging.getLogger("install_app").info("below the threshold")
    client = global_client.get_client()
    assert client.stats()["logs"]["captured"] == 1
    assert posthog.flush(5)  # the client's flush covers its logs
    assert [row.body for row in server.records()] == ["counted"]
    assert client.stats()["logs"]["sent"] == 1
    instrumentor.uninstrument()
    assert _otel_handlers(bare_root) == []
    assert "logs" not in client.stats()


def test_the_instrumentor_without_logs_adds_no_handler(
    instrumentor: PosthogInstrumentor, server: OtlpReceiver, bare_root: logging.Logger
) -> None:
    instrumentor.instrument(
        api_key=KEY, host=server.url, tracer_provider=TracerProvider(), instrument_libraries=False
    )
    assert _otel_handlers(bare_root) == []
    assert "logs" not in global_client.get_client().stats()


def test_a_bad_level_is_reported_and_the_app_runs(
    instrumentor: PosthogInstrumentor,
    server: OtlpReceiver,
    bare_root: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, "posthog.otel"):
        instrumentor.instrument(
            api_key=KEY,
            host=server.url,
            tracer_provider=TracerProvider(),
            instrument_libraries=False,
            logs=True,
            logs_level="loud",
        )
    assert "logs_level" in caplog.text
    assert _otel_handlers(bare_root) == []


def test_shutdown_delivers_queued_logs_within_the_budget(
    server: OtlpReceiver, bare_root: logging.Logger
) -> None:
    client = Client(KEY, host=server.url, flush_interval=30.0)
    installed = install(client)
    assert installed is not None
    client.attach_export("logs", installed.processor.export)
    try:
        for i in range(5):
            logging.getLogger("install_app").warning("queued %d", i)
        assert server.records() == []
        assert client.shutdown(5)
        assert len(server.records()) == 5
        logging.getLogger("install_app").warning("after shutdown")
        assert client.stats()["logs"]["dropped"] == {"shutdown": 1}
    finally:
        installed.uninstall(flush_timeout=0)


def test_an_unreadable_posthog_otel_logs_turns_logs_off_not_instrumentation(
    instrumentor: PosthogInstrumentor,
    server: OtlpReceiver,
    bare_root: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("POSTHOG_OTEL_LOGS", "sometimes")
    provider = TracerProvider()
    with caplog.at_level(logging.ERROR, "posthog.otel"):
        instrumentor.instrument(
            api_key=KEY, host=server.url, tracer_provider=provider, instrument_libraries=False
        )
    assert "POSTHOG_OTEL_LOGS" in caplog.text
    assert "runs uninstrumented" not in caplog.text
    assert _otel_handlers(bare_root) == []
    assert instrumentor._processor is not None  # spans are still stamped


def test_a_client_disabled_at_run_time_sends_no_logs(
    server: OtlpReceiver, bare_root: logging.Logger
) -> None:
    client = Client(KEY, host=server.url, flush_interval=0.05)
    installed = install(client)
    assert installed is not None
    try:
        logging.getLogger("install_app").warning("sent")
        client.disabled = True
        logging.getLogger("install_app").warning("not sent")
        client.disabled = False
        logging.getLogger("install_app").warning("sent again")
        assert installed.processor.force_flush(5_000)
        bodies = sorted(row.body for row in server.wait_for_records(2))
    finally:
        installed.uninstall()
        client.shutdown(0)
    assert bodies == ["sent", "sent again"]
    assert installed.processor.stats()["captured"] == 2
