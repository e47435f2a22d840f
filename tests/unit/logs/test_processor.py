"""The log processor with the real SDK (LoggerProvider + LoggingHandler) and a loopback OTLP
receiver: identity, tags and trace ids on records, the threshold, our own loggers, privacy."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs._internal import std_to_otel
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import posthog_otel as posthog
from posthog_otel.config import ClientSettings
from posthog_otel.logs.processor import PosthogLogProcessor, severity_floor
from tests.support.otlp_receiver import LogRow, OtlpReceiver, otlp_receiver

KEY = "phc_logs_test"


@pytest.fixture
def server() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


class _Pipeline:
    def __init__(self, server: OtlpReceiver, level: int = logging.INFO, **options: Any) -> None:
        settings = ClientSettings.build(KEY, server.url, flush_interval=0.05, **options)
        self.processor = PosthogLogProcessor(settings, level=level)
        self.provider = LoggerProvider(resource=Resource.create({"service.name": "shop"}))
        self.provider.add_log_record_processor(self.processor)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.handler = LoggingHandler(logger_provider=self.provider)

    def logger(self, name: str) -> logging.Logger:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        if self.handler not in logger.handlers:
            logger.addHandler(self.handler)
        return logger

    def close(self, *names: str) -> None:
        for name in names:
            logger = logging.getLogger(name)
            logger.removeHandler(self.handler)
            logger.propagate = True
            logger.setLevel(logging.NOTSET)
        self.provider.shutdown()


def _by_body(rows: list[LogRow]) -> dict[Any, LogRow]:
    return {row.body: row for row in rows}


def test_records_carry_identity_tags_and_trace_ids(server: OtlpReceiver) -> None:
    pipeline = _Pipeline(server)
    logger = pipeline.logger("shop.views")
    tracer = TracerProvider().get_tracer("test")
    try:
        with posthog.new_context(), tracer.start_as_current_span("GET /order") as span:
            posthog.identify_context("user-7")
            posthog.set_context_session("session-7")
            posthog.tag("plan", "pro")
            logger.info("order %s placed", 42, extra={"order.items": 3})
        logger.warning("outside any context")
        assert pipeline.processor.force_flush(5_000)
        rows = _by_body(server.wait_for_records(2))
    finally:
        pipeline.close("shop.views")
    placed = rows["order 42 placed"]
    assert placed.attributes["posthogDistinctId"] == "user-7"
    assert placed.attributes["sessionId"] == "session-7"
    assert placed.attributes["posthog.distinct_id"] == "user-7"
    assert placed.attributes["posthog.session_id"] == "session-7"
    assert placed.attributes["posthog.tag.plan"] == "pro"
    assert placed.attributes["order.items"] == 3
    assert placed.trace_id == format(span.get_span_context().trace_id, "032x")
    assert placed.span_id == format(span.get_span_context().span_id, "016x")
    assert placed.severity_text == "INFO" and placed.severity_number == 9
    assert placed.scope == "shop.views"
    assert placed.resource["service.name"] == "shop"
    outside = rows["outside any context"]
    assert not any(key.startswith("posthog") or key == "sessionId" for key in outside.attributes)
    request = server.requests[0]
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/x-protobuf"
    assert request.headers["Content-Encoding"] == "gzip"
    stats = pipeline.processor.stats()
    assert stats["captured"] == 2 and stats["sent"] == 2 and stats["dropped"] == {}


def test_records_below_the_threshold_are_not_sent(server: OtlpReceiver) -> None:
    pipeline = _Pipeline(server, level=logging.WARNING)
    logger = pipeline.logger("shop.threshold")
    try:
        logger.debug("debug")
        logger.info("info")
        logger.warning("warning")
        logger.error("error")
        logger.log(logging.WARNING - 1, "just below")
        assert pipeline.processor.force_flush(5_000)
        rows = server.wait_for_records(2)
    finally:
        pipeline.close("shop.threshold")
    assert sorted(row.body for row in rows) == ["error", "warning"]
    assert pipeline.processor.stats()["captured"] == 2


def test_our_own_loggers_are_never_exported(server: OtlpReceiver) -> None:
    pipeline = _Pipeline(server, level=logging.DEBUG)
    names = (
        "posthog",
        "posthog.otel",
        "posthog_otel.sink",
        "opentelemetry.exporter.otlp.proto.http._log_exporter",
        "opentelemetry.sdk._logs",
        "posthogapp",  # not ours: a name that only starts like ours
        "app",
    )
    loggers = [pipeline.logger(name) for name in names]
    # the HTTP stack logs while posting, on the export thread: never exported either
    urllib3 = pipeline.logger("urllib3")
    try:
        for logger in loggers:
            logger.warning("from %s", logger.name)
        assert pipeline.processor.force_flush(5_000)
        for _ in range(3):  # more posts: each logs urllib3 debug lines on the export thread
            loggers[-1].info("again")
            assert pipeline.processor.force_flush(5_000)
        rows = server.records()
    finally:
        pipeline.close(*names, "urllib3")
    assert sorted(str(row.body) for row in rows) == [
        "again",
        "again",
        "again",
        "from app",
        "from posthogapp",
    ]
    assert urllib3.handlers  # it was listening, at DEBUG, the whole time


def test_excluded_properties_stay_off_log_records(server: OtlpReceiver) -> None:
    pipeline = _Pipeline(server, exclude_properties=["email", "$session_id", "card_*"])
    logger = pipeline.logger("shop.private")
    try:
        with posthog.new_context():
            posthog.identify_context("user-8")
            posthog.set_context_session("session-8")
            posthog.tag("email", "a@example.com")
            posthog.tag("plan", "pro")
            logger.info("paid", extra={"card_number": "4242", "amount": 5})
        assert pipeline.processor.force_flush(5_000)
        (row,) = server.wait_for_records(1)
    finally:
        pipeline.close("shop.private")
    attributes = row.attributes
    assert attributes["posthogDistinctId"] == "user-8"
    assert attributes["posthog.tag.plan"] == "pro"
    assert attributes["amount"] == 5
    for absent in ("sessionId", "posthog.session_id", "posthog.tag.email", "card_number"):
        assert absent not in attributes
    assert "session-8" not in repr(attributes) and "a@example.com" not in repr(attributes)


def test_identity_is_left_off_when_it_cannot_be_checked(server: OtlpReceiver) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text")

        __repr__ = __str__

    pipeline = _Pipeline(server)
    logger = pipeline.logger("shop.failclosed")
    try:
        with posthog.new_context():
            posthog.identify_context("user-9")
            posthog.tag("weird", Unprintable())
            logger.info("still logged")
        assert pipeline.processor.force_flush(5_000)
        (row,) = server.wait_for_records(1)
    finally:
        pipeline.close("shop.failclosed")
    assert row.body == "still logged"
    assert not any(key.startswith("posthog") for key in row.attributes)


def test_the_record_other_processors_see_is_not_changed(server: OtlpReceiver) -> None:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    pipeline = _Pipeline(server)
    other = InMemoryLogRecordExporter()
    pipeline.provider.add_log_record_processor(SimpleLogRecordProcessor(other))
    logger = pipeline.logger("shop.shared")
    try:
        with posthog.new_context():
            posthog.identify_context("user-10")
            logger.info("shared")
        assert pipeline.processor.force_flush(5_000)
        (row,) = server.wait_for_records(1)
    finally:
        pipeline.close("shop.shared")
    assert row.attributes["posthogDistinctId"] == "user-10"
    (seen,) = other.get_finished_logs()
    assert "posthogDistinctId" not in (seen.log_record.attributes or {})


@pytest.mark.parametrize("level", range(0, 70))
def test_the_severity_floor_matches_opentelemetrys_mapping(level: int) -> None:
    """A record passes the threshold exactly when its Python level does."""
    floor = severity_floor(level)
    for record_level in range(0, 70):
        passes = std_to_otel(record_level).value >= floor
        if record_level >= level:
            assert passes, (level, record_level)
        elif level >= 10 and std_to_otel(record_level).value != std_to_otel(level).value:
            assert not passes, (level, record_level)


@pytest.mark.parametrize("privacy", [{"privacy_mode": True}, {"ai_privacy_mode": True}, {}])
def test_privacy_mode_keeps_genai_content_records_out(
    server: OtlpReceiver, privacy: dict[str, bool]
) -> None:
    secret = "the-secret-completion"
    pipeline = _Pipeline(server, **privacy)
    logger = pipeline.logger("llm.app")
    otel_logger = pipeline.provider.get_logger("llm.events")
    try:
        logger.info("prompt", extra={"gen_ai.input.messages": secret})
        logger.info("called model", extra={"gen_ai.request.model": "gpt-4o"})
        otel_logger.emit(
            event_name="gen_ai.choice",
            body={"message": secret},
            severity_number=SeverityNumber.INFO,
        )
        logger.info("done")
        assert pipeline.processor.force_flush(5_000)
        expected = 2 if privacy else 4
        rows = server.wait_for_records(expected)
    finally:
        pipeline.close("llm.app")
    assert len(rows) == expected
    stats = pipeline.processor.stats()
    if privacy:
        assert secret not in repr([(row.body, row.attributes) for row in rows])
        assert sorted(row.body for row in rows) == ["called model", "done"]
        assert stats["dropped"] == {"privacy": 2}
    else:
        assert [row.body for row in rows].count("prompt") == 1
        assert {"message": secret} in [row.body for row in rows]
        assert stats["dropped"] == {}
