"""An ASGI app for ``uvicorn --workers N``: each request captures one event and answers its uuid.

    uvicorn tests.reliability.apps.asgi_app:app --workers 2

Needs ``POSTHOG_API_KEY`` and ``POSTHOG_HOST``. Each worker process imports this module and
builds its own client. ``/healthz`` captures nothing. No explicit flush or shutdown.
"""

from __future__ import annotations

import json
import os
from typing import Any

from posthog_otel import Client
from posthog_otel.instrumentors.asgi import PosthogASGIMiddleware

client = Client(flush_interval=0.05, shutdown_timeout=5)


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    uuid = None
    if scope["path"] != "/healthz":
        uuid = client.capture("request_served", properties={"pid": os.getpid()})
    body = json.dumps({"uuid": uuid, "pid": os.getpid()}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


app = PosthogASGIMiddleware(_app, client=client)
