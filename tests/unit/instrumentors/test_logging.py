"""Logging: logged exceptions become one ``$exception`` each, records carry PostHog identity,
the level is configurable, our own logger never recurses, the factory chain is kept."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import posthog_otel as posthog
from posthog_otel import global_client
from posthog_otel.instrumentors.logging import PosthogLoggingInstrumentor
from posthog_otel.testing import CapturedEvents, memory_client


@pytest.fixture
def instrumented(events: CapturedEvents) -> Iterator[PosthogLoggingInstrumentor]:
    instrumentor = PosthogLoggingInstrumentor()
    instrumentor.instrument()
    yield instrumentor
    instrumentor.uninstrument()


def _logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False  # nothing reaches pytest's handlers: the factory still sees it
    logger.setLevel(logging.DEBUG)
    return logger


def test_logger_exception_becomes_one_exception_event(
    instrumented: PosthogLoggingInstrumentor, events: CapturedEvents
) -> None:
    logger = _logger("shop.payments")
    with posthog.new_context():
        posthog.identify_context("user-l")
        posthog.set_context_session("sess-l")
        posthog.tag("plan", "pro")
        try:
            raise ValueError("card declined")
        except ValueError:
            logger.exception("charge failed for order %s", 42)
    (event,) = events.named("$exception")
    props = event["properties"]
    assert event["distinct_id"] == "user-l"
    assert props["$session_id"] == "sess-l"
    assert props["plan"] == "pro"
    assert props["log_message"] == "charge failed for order 42"
    assert props["logger_name"] == "shop.payments"
    assert props["log_level"] == "ERROR"
    (entry,) = props["$exception_list"]
    assert entry["type"] == "ValueError"
    assert entry["value"] == "card declined"
    assert entry["mechanism"]["handled"] is True
    assert entry["stacktrace"]["frames"][-1]["function"].endswith(
        "test_logger_exception_becomes_one_exception_event"
    )


def test_error_with_exc_info_and_levels(
    instrumented: PosthogLoggingInstrumentor, events: CapturedEvents
) -> None:
    logger = _logger("shop.levels")
    for level in (logging.WARNING, logging.ERROR, logging.CRITICAL):
        try:
            raise KeyError(logging.getLevelName(level))
        except KeyError:
            logger.log(level, "failed", exc_info=True)
    exc = KeyError("passed as exc_info")
    logger.error("with an exception object", exc_info=exc)
    logger.error("no exception here")  # no exc_info: not an event
    levels = [e["properties"]["log_level"] for e in events.named("$exception")]
    assert levels == ["ERROR", "CRITICAL", "ERROR"]
    assert len(events) == 3


def test_same_exception_is_captured_once_across_paths(
    instrumented: PosthogLoggingInstrumentor, events: CapturedEvents
) -> None:
    logger = _logger("shop.dedupe")
    with pytest.raises(RuntimeError), posthog.new_context():  # the context would capture it
        try:
            raise RuntimeError("logged then re-raised")
        except RuntimeError:
            logger.exception("first report")
            logger.error("second report", exc_info=True)
            raise
    try:
        raise RuntimeError("captured first")
    except RuntimeError as exc:
        posthog.capture_exception(exc)
        logger.exception("then logged")
    messages = [e["properties"].get("log_message") for e in events.named("$exception")]
    assert messages == ["first report", None]


def test_level_option_and_environment(
    events: CapturedEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = _logger("shop.config")
    instrumentor = PosthogLoggingInstrumentor()

    def log_warning_with_exception() -> None:
        try:
            raise OSError("disk")
        except OSError:
            logger.warning("retrying", exc_info=True)

    monkeypatch.setenv("POSTHOG_OTEL_LOG_LEVEL", "warning")
    instrumentor.instrument()
    try:
        log_warning_with_exception()
    finally:
        instrumentor.uninstrument()
    assert len(events.named("$exception")) == 1

    monkeypatch.setenv("POSTHOG_OTEL_LOG_LEVEL", "loud")  # unreadable: ERROR, with a warning
    instrumentor.instrument()
    try:
        log_warning_with_exception()
    finally:
        instrumentor.uninstrument()
    assert len(events.named("$exception")) == 1

    instrumentor.instrument(level=logging.WARNING)  # given in code wins over the env
    try:
        log_warning_with_exception()
    finally:
        instrumentor.uninstrument()
    assert len(events.named("$exception")) == 2
    with pytest.raises(ValueError):
        instrumentor.instrument(level="not-a-level")


def test_records_carry_identity_for_formatters(instrumented: PosthogLoggingInstrumentor) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logging.Formatter("%(posthog_distinct_id)s|%(posthog_session_id)s|%(message)s")
    )
    logger = _logger("shop.format")
    logger.addHandler(handler)
    try:
        logger.info("outside")
        with posthog.new_context():
            posthog.identify_context("user-f")
            posthog.set_context_session("sess-f")
            logger.info("inside")
            child = logging.getLogger("shop.format.child")  # propagates to the handler
            child.warning("from a child")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().splitlines() == [
        "None|None|outside",
        "user-f|sess-f|inside",
        "user-f|sess-f|from a child",
    ]


def test_own_and_ignored_loggers_are_not_captured(events: CapturedEvents) -> None:
    instrumentor = PosthogLoggingInstrumentor()
    instrumentor.instrument(ignore_loggers=["noisy"])
    try:
        for name in ("posthog.otel", "posthog.otel.delivery", "posthog", "noisy", "noisy.sub"):
            try:
                raise ValueError(name)
            except ValueError:
                _logger(name).exception("ignored")
        try:
            raise ValueError("kept")
        except ValueError:
            _logger("noisyish").exception("kept")
    finally:
        instrumentor.uninstrument()
    assert [e["properties"]["logger_name"] for e in events.named("$exception")] == ["noisyish"]


def test_a_capture_that_logs_does_not_recurse(
    instrumented: PosthogLoggingInstrumentor, events: CapturedEvents
) -> None:
    """A before_send that logs an exception while the logged exception is captured."""
    inner = _logger("shop.before_send")
    seen: list[str] = []

    def before_send(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event["event"])
        try:
            raise LookupError("inside before_send")
        except LookupError:
            inner.exception("before_send failed")
        return event

    client, captured = memory_client(before_send=before_send)
    global_client.set_client(client)
    try:
        raise ValueError("outer")
    except ValueError:
        _logger("shop.outer").exception("outer failed")
    assert seen == ["$exception"]
    assert len(captured.named("$exception")) == 1


def test_factory_chain_is_kept_and_restored(events: CapturedEvents) -> None:
    original = logging.getLogRecordFactory()

    def custom(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = original(*args, **kwargs)
        record.custom = "yes"
        return record

    logging.setLogRecordFactory(custom)
    instrumentor = PosthogLoggingInstrumentor()
    try:
        instrumentor.instrument()
        record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "m", (), None)
        assert record.custom == "yes"
        assert record.posthog_distinct_id is None
        instrumentor.uninstrument()
        assert logging.getLogRecordFactory() is custom

        # Someone wraps ours: uninstrument leaves it in place, inert; instrument reuses it.
        instrumentor.instrument()
        ours = logging.getLogRecordFactory()

        def outer(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return ours(*args, **kwargs)

        logging.setLogRecordFactory(outer)
        instrumentor.uninstrument()
        assert logging.getLogRecordFactory() is outer
        record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "m", (), None)
        assert not hasattr(record, "posthog_distinct_id")
        instrumentor.instrument()
        assert logging.getLogRecordFactory() is outer  # not wrapped a second time
        record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "m", (), None)
        assert record.posthog_distinct_id is None
        instrumentor.uninstrument()
    finally:
        logging.setLogRecordFactory(original)


def test_threads_log_with_their_own_identity(
    instrumented: PosthogLoggingInstrumentor, events: CapturedEvents
) -> None:
    logger = _logger("shop.threads")
    barrier = threading.Barrier(4)

    def work(i: int) -> None:
        with posthog.new_context():
            posthog.identify_context(f"user-{i}")
            barrier.wait()
            try:
                raise ValueError(i)
            except ValueError:
                logger.exception("job %d failed", i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pairs = {(e["distinct_id"], e["properties"]["log_message"]) for e in events.named("$exception")}
    assert pairs == {(f"user-{i}", f"job {i} failed") for i in range(4)}
