"""What the logs export reads of OpenTelemetry's SDK internals, in one place.

Two things the SDK names private: the plain dict inside a log record's ``BoundedAttributes``
(read on the export thread without taking its lock per item: a record's attributes are final
once it is emitted), and the provider of a ``LoggingHandler`` already on the root logger (the
handler has no public name for it).

Usage::

    plain_attributes(sdk_record.attributes)   # a dict, not a copy
    handler_provider(handler)                 # the SDK LoggerProvider it emits to, or None
"""

from __future__ import annotations

from typing import Any

__all__ = ["handler_provider", "plain_attributes"]


def plain_attributes(attributes: Any) -> dict[str, Any]:
    """A record's attributes as a dict (the ``BoundedAttributes``' own, not a copy)."""
    if attributes is None:
        return {}
    inner = getattr(attributes, "_dict", None)
    if type(inner) is dict:
        return inner
    return dict(attributes)


def handler_provider(handler: Any) -> Any:
    """The SDK ``LoggerProvider`` an OpenTelemetry ``LoggingHandler`` emits to, or None."""
    provider = getattr(handler, "_logger_provider", None)
    if provider is not None and hasattr(provider, "add_log_record_processor"):
        return provider
    return None
