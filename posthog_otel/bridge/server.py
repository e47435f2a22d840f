"""Run the bridge under uvicorn: one process, or ``workers`` processes sharing one socket.

SIGTERM (or Ctrl-C) shuts down gracefully: uvicorn stops accepting connections and lets
requests in progress finish (up to ``shutdown_timeout`` seconds), then each process flushes its
queued events to PostHog within ``shutdown_timeout`` seconds and exits. With ``workers > 1``
uvicorn's supervisor passes SIGTERM on to every worker and waits for them.

Usage::

    from posthog_otel.bridge import BridgeSettings, serve
    serve(BridgeSettings.build(api_key="phc_...", workers=2))   # blocks until SIGTERM
"""

from __future__ import annotations

import os
from typing import Any

from .log_setup import configure_logging
from .settings import SETTINGS_ENV, BridgeSettings

__all__ = ["serve"]


def serve(settings: BridgeSettings) -> None:
    """Serve until SIGTERM/SIGINT; returns after the graceful shutdown."""
    import uvicorn

    from .app import create_app
    from .protocol import PROTOCOL_PATH, configure

    configure_logging(settings.verbose)
    configure(settings.header_timeout)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "lifespan": "on",
        "log_level": "info" if settings.verbose else "warning",
        "access_log": settings.verbose,
        "server_header": False,
        "proxy_headers": False,
        "http": PROTOCOL_PATH,  # h11, with a deadline for request headers
        "timeout_keep_alive": 60,  # above typical client idle timeouts' races, below Go's 90 s
        "timeout_graceful_shutdown": max(1, round(settings.shutdown_timeout)),
    }
    if settings.workers > 1:
        # Workers are new interpreters: they rebuild the settings from the environment.
        os.environ[SETTINGS_ENV] = settings.to_json()
        uvicorn.run(
            "posthog_otel.bridge.app:app_from_environment",
            factory=True,
            workers=settings.workers,
            **options,
        )
    else:
        uvicorn.run(create_app(settings), **options)
