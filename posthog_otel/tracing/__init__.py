"""Traces to PostHog's OTLP endpoint, and posthog-python's tracing API on OpenTelemetry.

* :mod:`.options`: the ``traces={...}`` option (posthog-python's keys).
* :mod:`.sender`: OpenTelemetry's OTLP/HTTP exporter with PostHog's auth, 413 splitting, counts.
* :mod:`.processor`: the bounded export queue as a ``SpanProcessor``.
* :mod:`.pipeline`: provider + processor for one client.
* :mod:`.span`: ``start_span``/``get_active_span`` handles on real OpenTelemetry spans.

Usage: ``Client(api_key, host, traces={"service_name": "api"})`` or
``PosthogInstrumentor().instrument(traces=True)``; then ``posthog_otel.start_span(...)``.
May import the foundation, the context layer and delivery; imported by the client.
"""

from __future__ import annotations
