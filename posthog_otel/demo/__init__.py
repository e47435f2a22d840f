"""``posthog-otel demo``: the whole pipeline on one machine, no account, no network.

It starts the local sink (or uses one already running on the port), runs two instrumented
services in their own processes (a shop API and a billing service, see
:mod:`posthog_otel.demo.services`), drives a short scripted browser session through them with
posthog-js-style tracing headers — tags, a cross-service call, a background thread, an
exception — then checks that every expected event arrived with the right person, session and
trace, prints a summary table and the viewer URL. Exit code 0 only if everything arrived.

    posthog-otel demo                 # sink on 127.0.0.1:8010 (or a free port)
    posthog-otel demo --port 0 --keep # any free port; keep the viewer running afterwards

May import everything below it: the public API, the instrumentors and the sink.
"""

from __future__ import annotations

from .session import run

__all__ = ["run"]
