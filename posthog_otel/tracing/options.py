"""The ``traces={...}`` option: posthog-python's keys, resolved for the OpenTelemetry SDK.

posthog-python 7.9x takes ``traces`` as a dict (``None`` = tracing off). The same keys are
accepted here; each unusable value falls back to its default with a warning, as there.
``True`` means ``{}`` (every default). What each key does on OpenTelemetry:

* ``service_name``, ``service_version``, ``environment``, ``resource_attributes``: the
  resource of a ``TracerProvider`` posthog-otel creates (an existing provider keeps its own).
* ``flush_interval``, ``max_queue_size``, ``max_export_batch_size``: the export queue.
* ``max_attributes_per_span``, ``max_events_per_span``, ``max_attribute_value_length``: the
  ``SpanLimits`` of a provider posthog-otel creates.
* ``max_live_spans``, ``max_span_age``: accepted; the OpenTelemetry SDK keeps no table of open
  spans to bound, so they have no effect.
* ``before_span_send``: not supported. It is the scrubbing point, so a value other than
  ``None`` keeps tracing off (fail closed) rather than exporting spans it was meant to redact.
* ``max_queue_bytes`` (ours): the export queue's bound in estimated bytes (default 16 MiB).

Usage::

    options = resolve_traces({"service_name": "checkout", "flush_interval": 1})
    options.service_name, options.max_export_batch_size     # ("checkout", 512)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["TracesOptions", "resolve_traces"]

_logger = logging.getLogger("posthog.otel")

_IDENTITY_RESOURCE_KEYS = ("service.name", "service.version", "deployment.environment")
_INERT_KEYS = ("max_live_spans", "max_span_age")


@dataclass(frozen=True)
class TracesOptions:
    """Resolved ``traces`` option. See the module docstring."""

    service_name: str | None = None
    service_version: str | None = None
    environment: str | None = None
    resource_attributes: dict[str, Any] = field(default_factory=dict)
    flush_interval: float = 5.0
    max_queue_size: int = 2048
    max_export_batch_size: int = 512
    max_queue_bytes: int = 16 * 1024 * 1024
    max_attributes_per_span: int = 128
    max_events_per_span: int = 128
    max_attribute_value_length: int = 8192
    max_live_spans: int = 10_000
    max_span_age: float = 3600.0

    def resource(self) -> dict[str, Any]:
        """Resource attributes: ``resource_attributes`` win over the named fields."""
        named = {
            "service.name": self.service_name,
            "service.version": self.service_version,
            "deployment.environment": self.environment,
        }
        merged = {key: value for key, value in named.items() if value is not None}
        merged.update(self.resource_attributes)
        return merged


_KNOWN = frozenset(f.name for f in fields(TracesOptions)) | {"before_span_send"}


def _positive(config: Mapping[str, Any], key: str, default: float, integer: bool) -> Any:
    value = config.get(key, default)
    ok = not isinstance(value, bool) and isinstance(value, int | float) and value > 0
    ok = ok and math.isfinite(value) and (not integer or float(value).is_integer())
    if not ok:
        kind = "a positive integer" if integer else "a positive number of seconds"
        _logger.warning("Ignoring traces %s %r: expected %s", key, value, kind)
        return default
    return int(value) if integer else float(value)


def _text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        _logger.warning("Ignoring traces %s %r: expected a string", key, value)
        return None
    return value


def _resource_attributes(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        _logger.warning("Ignoring traces resource_attributes: expected a dict")
        return {}
    attributes: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            continue
        if key in _IDENTITY_RESOURCE_KEYS and not isinstance(item, str):
            _logger.warning("Ignoring traces resource attribute %s: expected a string", key)
            continue
        attributes[key] = item
    return attributes


def resolve_traces(config: Any) -> TracesOptions | None:
    """The options for ``config``; None when tracing is off (``None``, ``False``).

    Raises ``ValueError`` for a ``before_span_send`` hook (not supported: tracing stays off).
    """
    if config is None or config is False:
        return None
    if config is True:
        config = {}
    if not isinstance(config, Mapping):
        _logger.warning("Ignoring traces config: expected a dict, got %s", type(config).__name__)
        config = {}
    unknown = sorted(str(key) for key in config if key not in _KNOWN)
    if unknown:
        _logger.warning("Ignoring unknown traces option(s): %s", ", ".join(unknown))
    hooks = config.get("before_span_send")
    if hooks is not None and hooks is not False and hooks != [] and hooks != ():
        raise ValueError(
            "traces before_span_send is not supported by posthog-otel; tracing stays off "
            "rather than exporting spans it was meant to redact (use an OpenTelemetry "
            "SpanProcessor to edit spans)"
        )
    given_inert = [key for key in _INERT_KEYS if key in config]
    if given_inert:
        _logger.info(
            "traces %s: accepted; OpenTelemetry keeps no table of open spans, no effect",
            ", ".join(given_inert),
        )
    defaults = TracesOptions()
    batch = _positive(config, "max_export_batch_size", defaults.max_export_batch_size, True)
    resource = _resource_attributes(config.get("resource_attributes"))
    return TracesOptions(
        service_name=_text(config, "service_name"),
        service_version=_text(config, "service_version"),
        environment=_text(config, "environment"),
        resource_attributes=resource,
        flush_interval=_positive(config, "flush_interval", defaults.flush_interval, False),
        # the queue holds at least one full batch
        max_queue_size=max(
            batch, _positive(config, "max_queue_size", defaults.max_queue_size, True)
        ),
        max_export_batch_size=batch,
        max_queue_bytes=_positive(config, "max_queue_bytes", defaults.max_queue_bytes, True),
        max_attributes_per_span=_positive(
            config, "max_attributes_per_span", defaults.max_attributes_per_span, True
        ),
        max_events_per_span=_positive(
            config, "max_events_per_span", defaults.max_events_per_span, True
        ),
        max_attribute_value_length=_positive(
            config, "max_attribute_value_length", defaults.max_attribute_value_length, True
        ),
        max_live_spans=_positive(config, "max_live_spans", defaults.max_live_spans, True),
        max_span_age=_positive(config, "max_span_age", defaults.max_span_age, False),
    )
