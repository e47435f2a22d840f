"""A WSGI app for gunicorn: each request captures one event and answers its uuid.

    gunicorn --preload -w 4 tests.reliability.apps.wsgi_app:app

Needs ``POSTHOG_API_KEY`` and ``POSTHOG_HOST``. With ``--preload`` the client is built (and
captures ``app_loaded``) in the master, before the workers are forked. ``/healthz`` captures
nothing. No explicit flush or shutdown anywhere: delivery at exit is the library's job.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from posthog_otel import Client
from posthog_otel.instrumentors.wsgi import PosthogWSGIMiddleware

client = Client(flush_interval=0.05, shutdown_timeout=5)
client.capture("app_loaded", distinct_id="server", properties={"pid": os.getpid()})


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    uuid = None
    if environ.get("PATH_INFO") != "/healthz":
        uuid = client.capture("request_served", properties={"pid": os.getpid()})
    body = json.dumps({"uuid": uuid, "pid": os.getpid()}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


app = PosthogWSGIMiddleware(_app, client=client)
