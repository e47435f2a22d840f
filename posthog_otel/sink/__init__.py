"""A local PostHog-compatible capture server that stores events in SQLite, with a web viewer.

Run it with ``posthog-otel sink`` (default http://127.0.0.1:8010, database
``./posthog-sink.sqlite3``) and point any app at it::

    POSTHOG_HOST=http://127.0.0.1:8010 POSTHOG_API_KEY=phc_local python app.py

It accepts what PostHog's capture API accepts (``/batch/``, ``/capture/``, ``/e/``,
``/i/v0/e/``, JSON or gzip) and PostHog's OTLP logs and traces endpoints (``/i/v1/logs``,
``/i/v1/traces``), validates events the way ingestion would and answers like PostHog; refused
events are kept and shown as rejected with their reason. The viewer at ``/`` lists events live
by event time with filters, a chart of counts per event name, person pages, event pages, an
error-tracker view of ``$exception`` events, and a trace page (``/traces/<trace id>``: the
trace's OTLP spans and PostHog events on one timeline). ``GET /api/events`` serves the same data as JSON.

From Python (tests, scripts)::

    from posthog_otel.sink import SinkServer

    with SinkServer(port=0, db_path=tmp_path / "sink.sqlite3") as sink:
        client = sink.client()
        client.capture("signed_up", distinct_id="u1")
        client.flush()
        assert sink.events("signed_up")[0]["distinct_id"] == "u1"

Modules: :mod:`.validation` (ingestion rules), :mod:`.ingest` (capture requests), :mod:`.otlp`
(OTLP requests, read with :mod:`posthog_otel.otlp`), :mod:`.records` (stored rows),
:mod:`.store` (SQLite), :mod:`.server` (:class:`SinkServer`), :mod:`.handler` (HTTP routes),
:mod:`.pages`, :mod:`.trace_view`, :mod:`.exception_view`, :mod:`.chart`, :mod:`._html`
(escaping and layout), :mod:`.static` (the viewer's CSS and JS, package data in ``assets/``).

May import the core layers and :mod:`posthog_otel.otlp`; imported by the testing helpers,
the demo and the CLI.
"""

from __future__ import annotations

from .records import StoredEvent
from .server import DEFAULT_DB, DEFAULT_PORT, SinkServer
from .store import EventFilter, EventStore

__all__ = ["DEFAULT_DB", "DEFAULT_PORT", "EventFilter", "EventStore", "SinkServer", "StoredEvent"]
