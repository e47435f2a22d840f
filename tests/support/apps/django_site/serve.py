"""Serve the test Django project on 127.0.0.1, port ``$PORT``.

    DJANGO_SETTINGS_MODULE=tests.support.apps.django_site.settings PORT=8000 \
        opentelemetry-instrument python -m tests.support.apps.django_site.serve

Like ``manage.py``, it only touches the settings after instrumentation ran, so
``PosthogDjangoInstrumentor`` inserts its middleware lazily.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    from django.core.wsgi import get_wsgi_application

    port = int(os.environ["PORT"])
    server = make_server("127.0.0.1", port, get_wsgi_application(), handler_class=_Quiet)

    # SIGINT inside a request would be swallowed by wsgiref's error handling: stop cleanly.
    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
