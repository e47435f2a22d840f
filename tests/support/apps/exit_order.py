"""Spans ended just before exit must still reach PostHog, whichever atexit handler runs first.

Usage: python exit_order.py client-first|provider-first N
"""

from __future__ import annotations

import os
import sys

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from posthog_otel import Client, PosthogSpanExporter

order, count = sys.argv[1], int(sys.argv[2])
host = os.environ["POSTHOG_HOST"]
if order == "client-first":
    client = Client("phc_exit", host=host, flush_interval=60)
    provider = TracerProvider()
else:
    provider = TracerProvider()
    client = Client("phc_exit", host=host, flush_interval=60)
provider.add_span_processor(
    BatchSpanProcessor(
        PosthogSpanExporter(client, capture_spans="all"), schedule_delay_millis=60_000
    )
)
tracer = provider.get_tracer("exit-order")
for i in range(count):
    with tracer.start_as_current_span(f"job-{i}"):
        pass
# no flush, no shutdown: the interpreter's atexit handlers must deliver everything
