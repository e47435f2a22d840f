"""Protobuf OTLP bodies, turned into the OTLP JSON shape that :mod:`.otlp` reads.

Importing this module needs ``opentelemetry-proto`` (``pip install 'posthog-otel[sink]'``);
:mod:`.otlp` imports it only for ``application/x-protobuf`` requests.

``MessageToDict`` writes bytes fields as base64, while OTLP JSON writes trace and span ids as
hex, so the id fields are converted back after the conversion.

Usage::

    document = decode("traces", body)      # {"resourceSpans": [...]} with hex ids

Answers are encoded without this package, in :mod:`posthog_otel.otlp.responses`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .validation import Rejection

__all__ = ["decode"]

_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})


def decode(signal: str, raw: bytes) -> dict[str, Any]:
    """Parse an ``Export{Logs,Trace}ServiceRequest``; :class:`Rejection` when it is not one."""
    message = ExportLogsServiceRequest() if signal == "logs" else ExportTraceServiceRequest()
    try:
        message.ParseFromString(raw)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise Rejection(
            "invalid_payload", f"body is not a valid OTLP protobuf message: {exc}"
        ) from None
    document = MessageToDict(message, use_integers_for_enums=True)
    _hex_ids(document)
    return document


def _hex_ids(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _ID_FIELDS and isinstance(item, str):
                value[key] = _b64_to_hex(item)
            else:
                _hex_ids(item)
    elif isinstance(value, list):
        for item in value:
            _hex_ids(item)


def _b64_to_hex(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).hex()
    except (binascii.Error, ValueError):
        return text
