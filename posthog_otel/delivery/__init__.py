"""Getting events to PostHog: JSON encoding, the bounded queue and worker, the HTTP transport.

May import :mod:`posthog_otel.config` and :mod:`posthog_otel.version`, never the client,
contexts or spans. Every queue in the package (events, spans) is
:class:`~posthog_otel.delivery.queue.BackgroundWorker`, so flushing everything at shutdown
is one registry (:mod:`posthog_otel.delivery.pending`).
"""
