"""Traces to PostHog's OTLP endpoint, and posthog-python's tracing API on OpenTelemetry.

* :mod:`.options`: the ``traces={...}`` option (posthog-python's keys).
* :mod:`.otlp_writer`: OTLP protobuf bytes for SDK spans (what OpenTelemetry's encoder writes).
* :mod:`.privacy`: what exported spans may carry (privacy mode, ``exclude_properties``).
* :mod:`.processor`: a ``SpanProcessor`` on the package's OTLP export
  (:mod:`posthog_otel.delivery.otlp_export`: queue, gzip, PostHog's auth, retries, 413).
* :mod:`.pipeline`: provider + processor for one client.
* :mod:`.span`: ``start_span``/``get_active_span`` handles on real OpenTelemetry spans.

Usage: ``Client(api_key, host, traces={"service_name": "api"})`` or
``PosthogInstrumentor().instrument(traces=True)``; then ``posthog_otel.start_span(...)``.
May import the foundation, the context layer and delivery; imported by the client.
"""

from __future__ import annotations
