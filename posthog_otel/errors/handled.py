"""Was an exception described by OpenTelemetry data handled? One rule for every reader.

OpenTelemetry has no "handled" field. Python's SDK writes ``exception.escaped`` when it
records an exception (``true`` when it left the span's scope); the Node.js and Java SDKs never
write it. So, for an exception recorded as a span event or a log record:

1. ``exception.escaped`` decides when present: ``true`` is unhandled, ``false`` handled;
2. otherwise, on a span, an exception is unhandled when the span ended with status ``ERROR``
   (the operation failed with it) and handled when it did not (it was recorded and the work
   went on);
3. otherwise, on a log record, it is unhandled at severity ``FATAL`` (21) and above (the
   process or request died of it) and handled below (someone caught it and logged it).

The span mapping (in-process exporter and OTLP bridge), the bridge's log mapping and the
sink's span pages all ask this module, so the same exception reads the same everywhere.

Usage::

    from posthog_otel.errors.handled import log_exception_handled, span_exception_handled

    handled = span_exception_handled(event_attributes.get("exception.escaped"),
                                     span_failed=status_code == "ERROR")
    handled = log_exception_handled(attributes.get("exception.escaped"), severity_number=17)

Standard library only.
"""

from __future__ import annotations

__all__ = ["FATAL_SEVERITY", "escaped_flag", "log_exception_handled", "span_exception_handled"]

#: OTLP severity number of ``FATAL`` (``SEVERITY_NUMBER_FATAL``).
FATAL_SEVERITY = 21


def escaped_flag(value: object) -> bool | None:
    """``exception.escaped`` as a bool (``true``/``false`` in any case, or a bool); None when
    absent or anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            return text == "true"
    return None


def span_exception_handled(escaped: object, *, span_failed: bool) -> bool:
    """Rule 1, else rule 2 of the module docstring."""
    flag = escaped_flag(escaped)
    if flag is not None:
        return not flag
    return not span_failed


def log_exception_handled(escaped: object, *, severity_number: int) -> bool:
    """Rule 1, else rule 3 of the module docstring."""
    flag = escaped_flag(escaped)
    if flag is not None:
        return not flag
    return severity_number < FATAL_SEVERITY
