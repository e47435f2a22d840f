"""Our OTLP log encoding against OpenTelemetry's own (``encode_logs`` of the OTLP exporter
package): the same request for the same records, and the PostHog attributes added to ours."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, LogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from posthog_otel.logs.encode import LogEncoder, approx_size, stamp


class _Keep(LogRecordProcessor):
    def __init__(self) -> None:
        self.records: list[Any] = []

    def on_emit(self, log_record: Any) -> None:
        self.records.append(log_record)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _records() -> list[Any]:
    keep = _Keep()
    providers = [
        LoggerProvider(resource=Resource.create({"service.name": name, "deploy": 3}))
        for name in ("shop", "billing")
    ]
    for provider in providers:
        provider.add_log_record_processor(keep)
    tracer = TracerProvider().get_tracer("t")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handlers = [LoggingHandler(logger_provider=p) for p in providers]
    loggers = []
    for index, handler in enumerate(handlers):
        for name in ("a", "b"):
            logger = logging.getLogger(f"encode.{index}.{name}")
            logger.propagate = False
            logger.setLevel(logging.DEBUG)
            logger.addHandler(handler)
            loggers.append(logger)
    try:
        with tracer.start_as_current_span("span"):
            loggers[0].info("text %s", "formatted", extra={"n": 3, "ok": True, "f": 1.5})
            loggers[1].warning({"structured": [1, "two", {"three": None}]})
        loggers[2].error("big int", extra={"huge": 2**70, "raw": b"\x00\x01", "seq": (1, 2)})
        loggers[3].debug(["a", "list", "body"])
        try:
            raise ValueError("boom")
        except ValueError:
            loggers[0].exception("failed")
        loggers[3].critical("after", extra={"posthog_distinct_id": "from-factory"})
    finally:
        for logger in loggers:
            logger.handlers.clear()
            logger.propagate = True
            logger.setLevel(logging.NOTSET)
    return keep.records


def _parsed(body: bytes) -> dict[str, Any]:
    message = ExportLogsServiceRequest()
    message.ParseFromString(body)
    return json_format.MessageToDict(message)


def _sorted_attributes(tree: Any) -> Any:
    if isinstance(tree, dict):
        out = {k: _sorted_attributes(v) for k, v in tree.items()}
        if isinstance(out.get("attributes"), list):
            out["attributes"] = sorted(out["attributes"], key=lambda kv: kv["key"])
        return out
    if isinstance(tree, list):
        return [_sorted_attributes(v) for v in tree]
    return tree


def test_the_same_request_as_opentelemetrys_encoder() -> None:
    records = [r for r in _records() if "posthog_distinct_id" not in r.log_record.attributes]
    assert len(records) == 5
    ours = _sorted_attributes(_parsed(LogEncoder().encode([(r, None) for r in records])))
    theirs = _sorted_attributes(json_format.MessageToDict(encode_logs(records)))
    # one difference: an int beyond 64 bits is dropped by theirs (with an error), ours sends
    # its digits
    (big,) = [
        record
        for resource in ours["resourceLogs"]
        for scope in resource["scopeLogs"]
        for record in scope["logRecords"]
        if record["body"] == {"stringValue": "big int"}
    ]
    huge = {"key": "huge", "value": {"stringValue": str(2**70)}}
    assert huge in big["attributes"]
    big["attributes"].remove(huge)
    assert ours == theirs
    assert len(ours["resourceLogs"]) == 2


def test_posthog_attributes_are_added_and_the_records_own_win() -> None:
    records = _records()
    identity = stamp({"posthogDistinctId": "u1", "sessionId": "s1", "n": "not this"})
    ours = _parsed(LogEncoder().encode([(r, identity) for r in records]))
    found = [
        {kv["key"]: kv["value"] for kv in record.get("attributes", [])}
        for resource in ours["resourceLogs"]
        for scope in resource["scopeLogs"]
        for record in scope["logRecords"]
    ]
    assert len(found) == 6
    assert all(a["posthogDistinctId"] == {"stringValue": "u1"} for a in found)
    assert all(a["sessionId"] == {"stringValue": "s1"} for a in found)
    assert {"intValue": "3"} in [a.get("n") for a in found]  # the record's own value won
    assert all("posthog_distinct_id" not in a for a in found)  # the formatter field is dropped


def test_excluded_names_are_left_out() -> None:
    records = _records()[:1]
    ours = _parsed(
        LogEncoder(lambda key: key in ("n", "sessionId")).encode(
            [(records[0], stamp({"sessionId": "s1", "posthogDistinctId": "u1"}))]
        )
    )
    (record,) = ours["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    keys = {kv["key"] for kv in record["attributes"]}
    assert "n" not in keys and "ok" in keys and "posthogDistinctId" in keys
    # exclusion of PostHog attributes is decided when they are stamped (the processor); the
    # encoder leaves out the record's own excluded attributes
    assert "sessionId" in keys


@pytest.mark.parametrize("length", [10, 10_000])
def test_the_size_estimate_follows_the_body_and_the_stack_trace(length: int) -> None:
    records = _records()
    failed = next(r for r in records if r.log_record.body == "failed")
    small = approx_size((records[0], None))
    assert approx_size((failed, None)) > len(failed.log_record.attributes["exception.stacktrace"])
    identity = stamp({"posthog.tag.note": "x" * length})
    assert approx_size((records[0], identity)) >= small + length
