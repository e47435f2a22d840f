"""The ``posthog-otel`` command.

Usage::

    posthog-otel sink [--host 127.0.0.1] [--port 8010] [--db posthog-sink.sqlite3] [--verbose]

``sink`` runs a local PostHog-compatible capture server with a web viewer (see
:mod:`posthog_otel.sink`); point apps at it with ``POSTHOG_HOST=http://127.0.0.1:8010``.

    posthog-otel demo [--port 8010] [--keep]

    posthog-otel bridge [--host 127.0.0.1] [--port 4318] [--workers N]
                        [--capture-spans roots|all|none] [--log-level ERROR] ...

``bridge`` receives OTLP/HTTP traces and logs (from an OpenTelemetry Collector's ``otlphttp``
exporter) and sends them to PostHog as events (see :mod:`posthog_otel.bridge`).

Each subcommand is one ``_add_<name>`` function that declares its arguments and sets
``handler``; :func:`main` dispatches.
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import socket
import sqlite3
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


class _DefaultsShown(argparse.HelpFormatter):
    """Help that ends every option with its default, unless the text already gives it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, [], argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posthog-otel",
        description="PostHog on OpenTelemetry: local tools.",
        formatter_class=_DefaultsShown,
    )
    parser.add_argument("--version", action="version", version=f"posthog-otel {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_sink(commands)
    _add_demo(commands)
    _add_bridge(commands)
    return parser


# --------------------------------------------------------------------------- demo


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        formatter_class=_DefaultsShown,
        help="run two instrumented services and a scripted session against a local sink",
        description=(
            "Start the local sink (or use one running on --port), run a shop API and a billing "
            "service in their own processes, drive a browser-like session through them with "
            "posthog-js tracing headers, and check every expected event arrived."
        ),
    )
    demo.add_argument("--port", type=int, default=8010, help="sink port (default 8010; 0 = any)")
    demo.add_argument(
        "--db",
        default=None,
        help="SQLite file for a sink started by the demo (default: a new temporary file)",
    )
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
        formatter_class=_DefaultsShown,
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
    sink.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests whose Host is NAME (repeatable); by default only the bound "
        "address, localhost and, when bound to 0.0.0.0 or ::, IP addresses (DNS rebinding)",
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
        sink = SinkServer(args.host, args.port, args.db, allow_hosts=args.allow_host)
    except SchemaError as exc:
        print(f"posthog-otel sink: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        print(f"posthog-otel sink: cannot open the database {args.db!r}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"posthog-otel sink: {_bind_problem(args.host, args.port, exc, 'sink')}",
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


# --------------------------------------------------------------------------- bridge


def _add_bridge(commands: Any) -> None:
    bridge = commands.add_parser(
        "bridge",
        formatter_class=_DefaultsShown,
        help="receive OTLP/HTTP traces and logs and send them to PostHog as events",
        description=(
            "An OTLP/HTTP receiver (POST /v1/traces, /v1/logs; protobuf or JSON; gzip) for an "
            "OpenTelemetry Collector's otlphttp exporter. Spans and log records become PostHog "
            "events with the same rules as the in-process exporter. The PostHog project key "
            "comes from --api-key or POSTHOG_API_KEY, the PostHog host from --posthog-host or "
            "POSTHOG_HOST."
        ),
    )
    add = bridge.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=4318, help="port (default 4318, OTLP/HTTP's)")
    add("--workers", type=int, default=1, help="worker processes (default 1)")
    add("--api-key", default=None, help="PostHog project API key (default: $POSTHOG_API_KEY)")
    add("--posthog-host", default=None, help="PostHog host (default: $POSTHOG_HOST or US cloud)")
    add(
        "--capture-spans",
        choices=("roots", "all", "none"),
        default=None,
        help="spans that become events besides exceptions and posthog.event-marked spans: "
        "local roots of identified traces (default), all, none",
    )
    add(
        "--log-level",
        default="ERROR",
        help="log records at or above this level with exception attributes become $exception "
        "events (default ERROR; a name or an OTLP severity number 1-24)",
    )
    add(
        "--require-header",
        action="append",
        default=[],
        metavar="'NAME=VALUE'",
        help="refuse requests without this exact header (repeatable), e.g. "
        "'Authorization=Bearer s3cret'",
    )
    add(
        "--key-from-request",
        action="store_true",
        help="take the PostHog project key from the request (X-PostHog-Api-Key or "
        "Authorization: Bearer) instead of only from configuration",
    )
    add("--max-projects", type=int, default=16, help="project keys kept with --key-from-request")
    add(
        "--max-body-mib",
        type=float,
        default=64,
        help="largest request body after decompression, MiB (default 64; over it: 413)",
    )
    add(
        "--max-queue-size",
        type=int,
        default=100_000,
        help="events queued for PostHog per process before answering 429 (default 100000)",
    )
    add(
        "--max-queue-mib",
        type=float,
        default=64,
        help="estimated bytes of events queued for PostHog per process before answering 429, "
        "MiB (default 64)",
    )
    add(
        "--body-timeout",
        type=float,
        default=30.0,
        help="seconds a request body may take to arrive; slower: 408 (default 30)",
    )
    add(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds a connection may take to send its request line and headers (default 10)",
    )
    add("--flush-at", type=int, default=1000, help="events per upload to PostHog (default 1000)")
    add("--max-attributes", type=int, default=128, help="attributes kept per span/log record")
    # --max-projects, --max-attributes and the others without a default in their text get
    # "(default: N)" from _DefaultsShown.
    add(
        "--retry-after",
        type=int,
        default=2,
        help="seconds in Retry-After of 429/503 answers (default 2)",
    )
    add(
        "--max-retries",
        type=int,
        default=10,
        help="retries of an upload to PostHog before its events are dropped (default 10: about "
        "2.5-3 minutes of backoff, during which a full queue answers 429)",
    )
    add(
        "--shutdown-timeout",
        type=float,
        default=10.0,
        help="seconds to finish requests, and then to flush events, on SIGTERM (default 10)",
    )
    add(
        "--genai-log-wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds a $ai_generation without its messages waits for GenAI content log "
        "records sent after its span (default: $POSTHOG_OTEL_GENAI_LOG_WAIT or 5; 0: no wait)",
    )
    add("--verbose", action="store_true", help="log every request")
    bridge.set_defaults(handler=_run_bridge)


def _run_bridge(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("uvicorn") is None:
        print(
            "posthog-otel bridge needs the bridge extra (uvicorn is missing): "
            "pip install './posthog-otel[bridge]' from a clone (or pip install uvicorn)",
            file=sys.stderr,
        )
        return 2
    from .bridge.server import serve
    from .bridge.settings import MIB, BridgeSettings

    body_cap = int(args.max_body_mib * MIB)
    try:
        settings = BridgeSettings.build(
            api_key=args.api_key,
            posthog_host=args.posthog_host,
            host=args.host,
            port=args.port,
            workers=args.workers,
            capture_spans=args.capture_spans,
            log_level=args.log_level,
            require_headers=args.require_header,
            key_from_request=args.key_from_request,
            max_projects=args.max_projects,
            max_body_bytes=body_cap,
            max_inflight_bytes=max(2 * body_cap, 128 * MIB),
            max_queue_size=args.max_queue_size,
            max_queue_bytes=int(args.max_queue_mib * MIB),
            body_timeout=args.body_timeout,
            header_timeout=args.header_timeout,
            flush_at=args.flush_at,
            max_attributes=args.max_attributes,
            retry_after=args.retry_after,
            max_retries=args.max_retries,
            shutdown_timeout=args.shutdown_timeout,
            genai_log_wait=args.genai_log_wait,
            verbose=args.verbose,
        )
    except ValueError as exc:
        print(f"posthog-otel bridge: {exc}", file=sys.stderr)
        return 2
    if not settings.api_key and not settings.key_from_request:
        print(
            "posthog-otel bridge: no PostHog project key: set POSTHOG_API_KEY or --api-key "
            "(or use --key-from-request)",
            file=sys.stderr,
        )
        return 2
    problem = _bind_check(settings.host, settings.port)
    if problem is not None:
        print(f"posthog-otel bridge: {problem}", file=sys.stderr)
        return 2
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.require_headers:
        print(
            f"warning: listening on {settings.host} without --require-header: anyone who can "
            "reach it can send events to your PostHog project",
            file=sys.stderr,
        )
    print(
        f"posthog-otel bridge on http://{settings.host}:{settings.port} (/v1/traces, /v1/logs, "
        f"/healthz), {settings.workers} worker(s), capture_spans={settings.capture_spans}, "
        f"sending to {settings.posthog_host or 'https://us.i.posthog.com'}",
        flush=True,
    )
    try:
        serve(settings)
    except OSError as exc:
        print(f"posthog-otel bridge: cannot listen: {exc}", file=sys.stderr)
        return 2
    print("posthog-otel bridge stopped", flush=True)
    return 0


# --------------------------------------------------------------------------- start-up errors


def _bind_problem(host: str, port: int, exc: OSError, program: str) -> str:
    """One accurate line for a failure to listen on ``host:port``."""
    where = f"cannot listen on {host}:{port}"
    if isinstance(exc, socket.gaierror):
        return f"{where}: {host!r} is not a known host name or address"
    if exc.errno == errno.EADDRINUSE:
        hint = ", or --port 0 for any free port" if program == "sink" else ""
        return f"{where}: the port is in use (another {program}, or another program); choose another --port{hint}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}: {host} is not an address of this machine"
    if exc.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need privileges)"
    return f"{where}: {exc.strerror or exc}"


def _bind_check(host: str, port: int) -> str | None:
    """Bind ``host:port`` once, as the server will, to report a problem before starting."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        return _bind_problem(host, port, exc, "bridge")
    return None


if __name__ == "__main__":
    sys.exit(main())
