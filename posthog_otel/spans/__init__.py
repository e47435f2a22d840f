"""Spans to PostHog events: the span processor, the exporter, the mapping and ``capture_span``.

Sits above the client and propagation; below the instrumentors, bridge and sink, which reuse
:mod:`posthog_otel.spans.mapping` so that every path maps spans the same way.
"""
