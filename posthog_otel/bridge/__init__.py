"""``posthog-otel bridge``: an OTLP/HTTP receiver that turns spans and logs into PostHog events.

Services in any language export OTLP to an OpenTelemetry Collector; the Collector's
``otlphttp`` exporter points at the bridge, which maps spans with the same rules as the
in-process :class:`~posthog_otel.spans.exporter.PosthogSpanExporter` (:mod:`posthog_otel.spans.mapping`)
and log records with :mod:`.logs`, and sends the events to PostHog. Besides GenAI content
records and the generations waiting briefly for them (:mod:`.genai_wait`, per process), it keeps
no state between requests, so it scales out with ``--workers``, more instances, or the
Collector's ``loadbalancing`` exporter (by trace id for both traces and logs when LLM content
comes as log records).

Needs the ``bridge`` extra: ``pip install './posthog-otel[bridge]'`` from a clone.

Usage::

    POSTHOG_API_KEY=phc_... posthog-otel bridge --port 4318 --workers 2

    # in Python
    from posthog_otel.bridge import BridgeSettings, create_app, serve
    serve(BridgeSettings.build(api_key="phc_...", capture_spans="roots", log_level="ERROR"))

Modules: :mod:`.logs` (log records -> events), :mod:`.genai_wait` (generations held for GenAI
content records sent after their span), :mod:`.pipeline` (decode with
:mod:`posthog_otel.otlp` + map with :mod:`posthog_otel.spans.mapping` + queue, back-pressure),
:mod:`.limits` (body cap, streaming decompression, memory budget), :mod:`.auth` (required
headers, project keys), :mod:`.app` (the ASGI application), :mod:`.server` (uvicorn, workers,
shutdown), :mod:`.log_setup` (log output), :mod:`.settings`.

May import the core layers (context, errors, delivery, client, propagation, spans) and
:mod:`posthog_otel.otlp`; nothing imports the bridge except the CLI.
"""

from __future__ import annotations

from .app import BridgeApp, create_app
from .server import serve
from .settings import BridgeSettings

__all__ = ["BridgeApp", "BridgeSettings", "create_app", "serve"]
