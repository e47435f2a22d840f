"""Building OTLP messages with opentelemetry-proto's generated classes, and reading their
attribute values back the reference way, for the OTLP reader tests.

    request = ExportTraceServiceRequest()
    add_attributes(span.attributes, {"plan": "pro", "n": 3})
    reference_attributes(span.attributes)      # {"plan": "pro", "n": 3}
"""

from __future__ import annotations

import base64
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def reference_value(value: AnyValue) -> Any:
    """An ``AnyValue`` as the generated classes read it (bytes as base64, as OTLP JSON has them)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [reference_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: reference_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which)


def reference_attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: reference_value(kv.value) for kv in kvs}


def fill(target: AnyValue, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, list):
        target.array_value.SetInParent()
        for item in value:
            fill(target.array_value.values.add(), item)
    else:
        target.kvlist_value.SetInParent()
        for key, item in value.items():
            fill(target.kvlist_value.values.add(key=key).value, item)


def add_attributes(container: Any, attributes: dict[str, Any]) -> None:
    for key, value in attributes.items():
        fill(container.add(key=key).value, value)
