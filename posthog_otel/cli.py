"""The ``posthog-otel`` command.

Usage::

    posthog-otel sink [--host 127.0.0.1] [--port 8010] [--db posthog-sink.sqlite3] [--verbose]

``sink`` runs a local PostHog-compatible capture server with a web viewer (see
:mod:`posthog_otel.sink`); point apps at it with ``POSTHOG_HOST=http://127.0.0.1:8010``.

    posthog-otel demo [--port 8010] [--keep]

Each subcommand is one ``_add_<name>`` function that declares its arguments and sets
``handler``; :func:`main` dispatches.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from .version import __version__

__all__ = ["main"]

_Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (also used by the console script)."""
    parser = _parser()
    args = parser.parse_args(argv)
    handler: _Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posthog-otel",
        description="PostHog on OpenTelemetry: local tools.",
    )
    parser.add_argument("--version", action="version", version=f"posthog-otel {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_sink(commands)
    _add_demo(commands)
    return parser


# --------------------------------------------------------------------------- demo


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run two instrumented services and a scripted session against a local sink",
        description=(
            "Start the local sink (or use one running on --port), run a shop API and a billing "
            "service in their own processes, drive a browser-like session through them with "
            "posthog-js tracing headers, and check every expected event arrived."
        ),
    )
    demo.add_argument("--port", type=int, default=8010, help="sink port (default 8010; 0 = any)")
    demo.add_argument("--db", default=None, help="SQLite file for a sink started by the demo")
    demo.add_argument("--keep", action="store_true", help="keep the viewer running afterwards")
    demo.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(port=args.port, db=args.db, keep=args.keep)


# --------------------------------------------------------------------------- sink


def _add_sink(commands: Any) -> None:
    from .sink.server import DEFAULT_DB, DEFAULT_PORT

    sink = commands.add_parser(
        "sink",
        help="run a local PostHog-compatible capture server with a web viewer",
        description=(
            "Accept PostHog capture requests (/batch/, /capture/, /e/, /i/v0/e/) and OTLP "
            "logs and traces (/i/v1/logs, /i/v1/traces), validate them like PostHog's "
            "ingestion, store them in SQLite and show them at http://HOST:PORT/."
        ),
    )
    sink.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sink.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any)"
    )
    sink.add_argument(
        "--db", default=DEFAULT_DB, help=f"SQLite database file (default ./{DEFAULT_DB})"
    )
    sink.add_argument("--verbose", action="store_true", help="log every request")
    sink.set_defaults(handler=_run_sink)


def _run_sink(args: argparse.Namespace) -> int:
    from .sink.server import SinkServer
    from .sink.store import SchemaError

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    if not 0 <= args.port <= 65535:
        print(f"posthog-otel sink: --port {args.port} is not a port number", file=sys.stderr)
        return 2
    try:
        sink = SinkServer(args.host, args.port, args.db)
    except SchemaError as exc:
        print(f"posthog-otel sink: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"posthog-otel sink: cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
            "is another sink running? Try --port 0 for any free port.",
            file=sys.stderr,
        )
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: listening on {args.host}: anyone who can reach it can read and delete "
            "the stored events",
            file=sys.stderr,
        )
    print(
        f"posthog-otel sink listening on {sink.url}\n"
        f"  viewer:   {sink.url}/\n"
        f"  database: {sink.store.path}\n"
        f"  send events with POSTHOG_HOST={sink.url} POSTHOG_API_KEY=phc_local",
        flush=True,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _on_signal)
    sink.start()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sink.stop()
        print("posthog-otel sink stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
