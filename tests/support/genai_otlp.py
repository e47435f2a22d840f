"""One model call as OTLP protobuf bodies built with opentelemetry-proto's classes: its chat
span (with a person, session and tag) and its GenAI content log records, in separate requests
as a Collector sends them.

    call = GenAiCall("user-1")
    call.traces()          # ExportTraceServiceRequest bytes: the chat span
    call.logs()            # openai-v2's gen_ai.user.message + gen_ai.choice records
    call.details_logs()    # util-genai's gen_ai.client.inference.operation.details record
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

INPUT = [{"role": "user", "parts": [{"type": "text", "content": "Summarise my cart"}]}]
OUTPUT = [{"role": "assistant", "parts": [{"type": "text", "content": "3 items, 42 EUR"}]}]
RESOURCE = Resource(
    attributes=[KeyValue(key="service.name", value=AnyValue(string_value="cart-node"))]
)


def _value(value: Any) -> AnyValue:
    if isinstance(value, dict):
        pairs = [KeyValue(key=k, value=_value(v)) for k, v in value.items()]
        return AnyValue(kvlist_value=KeyValueList(values=pairs))
    if isinstance(value, int):
        return AnyValue(int_value=value)
    return AnyValue(string_value=str(value))


def _attributes(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(value)) for key, value in values.items()]


class GenAiCall:
    """One model call: its ids, its person, its span and its content records as bodies."""

    def __init__(self, user: str, **attributes: Any) -> None:
        self.user = user
        self.attributes = attributes  # more span attributes (gen_ai.operation.name...)
        self.trace_id = os.urandom(16)
        self.span_id = os.urandom(8)

    def traces(self, status_code: int = 0) -> bytes:
        now = time.time_ns()
        span = Span(
            trace_id=self.trace_id,
            span_id=self.span_id,
            name="chat gpt-4o-mini",
            kind=Span.SPAN_KIND_CLIENT,
            status=Status(code=status_code),
            start_time_unix_nano=now - 800_000_000,
            end_time_unix_nano=now,
            attributes=_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 9,
                    "posthog.distinct_id": self.user,
                    "posthog.session_id": f"session-{self.user}",
                    "posthog.tag.plan": "pro",
                    **self.attributes,
                }
            ),
        )
        scope = ScopeSpans(spans=[span])
        request = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(resource=RESOURCE, scope_spans=[scope])]
        )
        return request.SerializeToString()

    def logs(self) -> bytes:
        """openai-v2's per-message records: the prompt, then the choice."""
        records = [
            LogRecord(
                time_unix_nano=time.time_ns(),
                trace_id=self.trace_id,
                span_id=self.span_id,
                event_name="gen_ai.user.message",
                body=_value({"content": "Summarise my cart"}),
                attributes=_attributes({"gen_ai.system": "openai"}),
            ),
            LogRecord(
                time_unix_nano=time.time_ns(),
                trace_id=self.trace_id,
                span_id=self.span_id,
                event_name="gen_ai.choice",
                body=_value(
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "3 items, 42 EUR"},
                    }
                ),
                attributes=_attributes({"gen_ai.system": "openai"}),
            ),
        ]
        return _logs_request(records)

    def details_logs(self) -> bytes:
        """opentelemetry-util-genai's one details record with both directions."""
        record = LogRecord(
            time_unix_nano=time.time_ns(),
            trace_id=self.trace_id,
            span_id=self.span_id,
            event_name="gen_ai.client.inference.operation.details",
            attributes=_attributes(
                {
                    "gen_ai.input.messages": json.dumps(INPUT),
                    "gen_ai.output.messages": json.dumps(OUTPUT),
                }
            ),
        )
        return _logs_request([record])


def _logs_request(records: list[LogRecord]) -> bytes:
    scope = ScopeLogs(log_records=records)
    request = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=RESOURCE, scope_logs=[scope])]
    )
    return request.SerializeToString()
