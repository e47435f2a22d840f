"""Spans ended just before a flush, a shutdown or an exit without ``atexit`` become events."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from posthog_otel import Client, PosthogSpanProcessor
from posthog_otel.testing.capture_server import CaptureServer

ROOT = Path(__file__).resolve().parents[3]

_CHILDREN = 4

# Each multiprocessing child ends a span and returns at once: the child leaves through
# os._exit(), so only multiprocessing's exit finalizers run, not atexit or the provider's.
_SCRIPT = f"""
import multiprocessing, os, sys
from opentelemetry.sdk.trace import TracerProvider
from posthog_otel import Client, PosthogSpanProcessor

client = Client("phc_exit", host=sys.argv[1], flush_interval=60, shutdown_timeout=5)
provider = TracerProvider()
provider.add_span_processor(PosthogSpanProcessor(client, capture_spans="all"))
tracer = provider.get_tracer("exit")


def child(n):
    with tracer.start_as_current_span(f"job-{{n}}"):
        pass


if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    processes = [ctx.Process(target=child, args=(n,)) for n in range({_CHILDREN})]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
        assert process.exitcode == 0, process.exitcode
"""


def test_span_ended_just_before_a_multiprocessing_child_exits_is_delivered(
    capture_server: CaptureServer,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, capture_server.url],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    events = capture_server.wait_for_events(_CHILDREN, timeout=5)
    assert sorted(e["event"] for e in events) == [f"job-{n}" for n in range(_CHILDREN)]


@pytest.mark.parametrize("how", ["flush", "shutdown"])
def test_client_flush_and_shutdown_deliver_spans_ended_just_before(
    capture_server: CaptureServer, how: str
) -> None:
    """The span processor's thread wakes for a batch or after an interval: a client's flush or
    shutdown must not leave the spans it holds behind (they become this client's events)."""
    client = Client("phc_flush", host=capture_server.url, flush_interval=60)
    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor(client, capture_spans="all"))
    tracer = provider.get_tracer("flush")
    for n in range(3):
        with tracer.start_as_current_span(f"job-{n}"):
            pass
    assert getattr(client, how)(5)
    # delivered by the call itself, not by a later wake-up of a thread
    assert sorted(e["event"] for e in capture_server.events) == ["job-0", "job-1", "job-2"]
    provider.shutdown()
    client.shutdown(1)
