"""How costs grow with the number of tags (0, 5, 20, 50) and with event size, vs posthog-python.

    python -m benchmarks.scaling

Per tag count: a context cycle (enter + identify + session + N tags + exit), the caller-side
cost of ``capture()`` inside that context, and span stamping per span; per property payload
size: ``capture()`` caller cost and the sender's encoding cost per event.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

import posthog_otel as ours

from ._timing import compare, per_call_ns

TAG_COUNTS = (0, 5, 20, 50)
SIZES = (100, 1_000, 10_000, 100_000)


class _NullTransport:
    def enqueue(self, event: dict[str, Any]) -> bool:
        return True

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        return True

    def stats(self) -> dict[str, Any]:
        return {}


def _tags(n: int) -> dict[str, Any]:
    return {f"tag_{i}": (i if i % 2 else f"value-{i}") for i in range(n)}


def bench_tags() -> list[str]:
    import posthog as peer

    from posthog_otel.spans.processor import PosthogSpanProcessor

    logging.disable(logging.WARNING)
    our_client = ours.Client("phc_bench", transport=_NullTransport())
    peer_client = peer.Posthog("phc_bench", host="http://127.0.0.1:9", send=False)
    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor(ours.Client(disabled=True)))
    tracer = provider.get_tracer("bench")
    lines = ["tags | context cycle ours/peer (us) | capture ours/peer (us) | span stamping (us)"]
    for n in TAG_COUNTS:
        tags = _tags(n)

        def ours_cycle(tags: dict[str, Any] = tags) -> None:
            with ours.new_context():
                ours.identify_context("u")
                ours.set_context_session("s")
                for key, value in tags.items():
                    ours.tag(key, value)

        def peer_cycle(tags: dict[str, Any] = tags) -> None:
            with peer.new_context():
                peer.identify_context("u")
                peer.set_context_session("s")
                for key, value in tags.items():
                    peer.tag(key, value)

        cycle = compare({"ours": ours_cycle, "peer": peer_cycle}, calls=5_000, rounds=5)
        with ours.new_context(), peer.new_context():
            for key, value in tags.items():
                ours.tag(key, value)
                peer.tag(key, value)
            ours.identify_context("u")
            peer.identify_context("u")
            capture = compare(
                {
                    "ours": lambda: our_client.capture(
                        "e", properties={"a": 1, "b": "x", "c": True}
                    ),
                    "peer": lambda: peer_client.capture(
                        "e", properties={"a": 1, "b": "x", "c": True}
                    ),
                },
                calls=2_000,
                rounds=5,
            )

            def one_span() -> None:
                with tracer.start_as_current_span("work"):
                    pass

            span = per_call_ns(one_span, 5_000)
        lines.append(
            f"{n:>4} | {cycle['ours'] / 1000:.2f} / {cycle['peer'] / 1000:.2f} "
            f"({cycle['ours'] / cycle['peer']:.2f}x) | {capture['ours'] / 1000:.2f} / "
            f"{capture['peer'] / 1000:.2f} ({capture['ours'] / capture['peer']:.2f}x) | {span / 1000:.2f}"
        )
    peer_client.shutdown()
    logging.disable(logging.NOTSET)
    return lines


def bench_sizes() -> list[str]:
    from posthog_otel.delivery import encoding as _json

    client = ours.Client("phc_bench", transport=_NullTransport())
    lines = ["payload bytes | capture caller (us) | encode per event on the sender (us)"]
    for size in SIZES:
        props = {"blob": "x" * size, "n": 1}
        caller = per_call_ns(lambda props=props: client.capture("e", properties=props), 2_000)
        event = {
            "event": "e",
            "distinct_id": "u",
            "properties": props,
            "timestamp": 1.0,
            "uuid": "x",
        }
        encode = per_call_ns(lambda event=event: _json.dumps_event(dict(event)), 2_000)
        assert len(json.dumps(props)) >= size
        lines.append(f"{size:>13} | {caller / 1000:.2f} | {encode / 1000:.2f}")
    return lines


def run() -> list[str]:
    return [*bench_tags(), "", *bench_sizes()]


if __name__ == "__main__":
    for line in run():
        print(line)
