"""Getting events to PostHog: JSON encoding, the bounded queue and worker, the HTTP transport.

May import :mod:`posthog_otel.config`, :mod:`posthog_otel.version` and
:mod:`posthog_otel.context.runtime` (to send with instrumentation suppressed), never the
client, propagation or spans. Every queue in the package (events, spans, logs) is
:class:`~posthog_otel.delivery.queue.WorkQueue` (bounded, one daemon thread, fork-safe,
deadline-bounded flush and shutdown), so flushing everything at shutdown reads one registry
(:mod:`posthog_otel.delivery.pending`). :mod:`~posthog_otel.delivery.transport` is that queue
plus :mod:`~posthog_otel.delivery.sender` (HTTP posting, retries, gzip);
:mod:`~posthog_otel.delivery.otlp_export` is the same for an OpenTelemetry signal (logs) posted
to one of PostHog's OTLP endpoints.
"""
