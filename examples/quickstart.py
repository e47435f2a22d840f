"""posthog-otel quick start: contexts, events, exceptions and traces, with no account needed.

Needs: ``pip install ./posthog-otel`` (no extras). Run it with
``python examples/quickstart.py``. It starts a PostHog-compatible capture server on 127.0.0.1, points posthog-otel at it, runs a
small "checkout" flow the way a web request would, and prints what PostHog would receive.
Exit code 0 only if every expected event arrived with the right person, session and tags.
"""

from __future__ import annotations

import contextlib
import sys
from concurrent.futures import ThreadPoolExecutor

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import posthog_otel as posthog
from posthog_otel.instrumentors.threading import PosthogThreadingInstrumentor
from posthog_otel.testing.capture_server import CaptureServer


def charge_card(amount: int) -> None:
    posthog.tag("order_steps", [*posthog.get_tags().get("order_steps", []), "charge_card"])
    if amount > 100:
        raise ValueError(f"card declined for amount {amount}")


def send_receipt() -> str | None:
    # Runs on a worker thread: the request's identity follows through the OTel Context.
    posthog.capture("receipt_sent")
    return posthog.get_context_distinct_id()


def handle_checkout(headers: dict[str, str], amount: int, pool: ThreadPoolExecutor) -> None:
    tracer = trace.get_tracer("quickstart")
    with tracer.start_as_current_span("POST /checkout"), posthog.new_context():
        posthog.identify_context(headers["X-POSTHOG-DISTINCT-ID"])
        posthog.set_context_session(headers["X-POSTHOG-SESSION-ID"])
        posthog.tag("plan", "pro")
        posthog.tag("order_steps", ["validate"])
        charge_card(amount)
        posthog.capture("order_completed", properties={"amount": amount})
        worker_user = pool.submit(send_receipt).result()
        assert worker_user == headers["X-POSTHOG-DISTINCT-ID"]


def main() -> int:
    trace.set_tracer_provider(TracerProvider())
    PosthogThreadingInstrumentor().instrument()  # thread pools see the request's context
    headers = {"X-POSTHOG-DISTINCT-ID": "user-42", "X-POSTHOG-SESSION-ID": "session-7"}

    with CaptureServer() as server:
        posthog.setup(api_key="phc_quickstart", host=server.url)
        with ThreadPoolExecutor(max_workers=2) as pool:
            handle_checkout(headers, 40, pool)
            with contextlib.suppress(ValueError):  # captured as $exception on its way out
                handle_checkout(headers, 500, pool)
        posthog.flush(10)
        events = server.events

        print(f"{'event':<18} {'distinct_id':<10} {'session':<10} {'$trace_id':<34} tags")
        for event in events:
            props = event["properties"]
            tags = {k: props[k] for k in props.get("$context_tags", [])}
            print(
                f"{event['event']:<18} {event['distinct_id']:<10} {props.get('$session_id', ''):<10} "
                f"{props.get('$trace_id', ''):<34} {tags}"
            )
        exception = next(e for e in events if e["event"] == "$exception")
        top = exception["properties"]["$exception_list"][0]
        print(f"\n$exception: {top['type']}: {top['value']}")
        for frame in top["stacktrace"]["frames"][-2:]:
            print(
                f"  {frame['filename']}:{frame['lineno']} in {frame['function']}: {frame['context_line']}"
            )

    expected = {"order_completed": 1, "receipt_sent": 1, "$exception": 1}
    counts = {name: sum(1 for e in events if e["event"] == name) for name in expected}
    right_person = all(e["distinct_id"] == "user-42" for e in events)
    right_session = all(e["properties"].get("$session_id") == "session-7" for e in events)
    right_tags = all(e["properties"].get("plan") == "pro" for e in events)
    ok = counts == expected and right_person and right_session and right_tags
    print(
        f"\n{'OK' if ok else 'MISSING EVENTS'}: {counts}, person ok={right_person}, "
        f"session ok={right_session}, tags ok={right_tags}"
    )
    posthog.shutdown(2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
