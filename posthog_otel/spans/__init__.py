"""Spans to PostHog events: the span processor, the exporter, the mapping and ``capture_span``.

May import the context, errors, delivery, client and propagation layers; sits below the
instrumentors, bridge and sink, which reuse :mod:`posthog_otel.spans.mapping` so that every
path maps spans the same way. Reads of the OpenTelemetry SDK's internals live in
:mod:`._sdk` only.
"""
