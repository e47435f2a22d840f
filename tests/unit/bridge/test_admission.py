"""Requests mapped at the same time share the bridge's outgoing queue: admission counts what
the others have reserved, so together they are answered 429 (the Collector retries) instead of
overfilling the queue (which would drop events)."""

from __future__ import annotations

import threading
from typing import Any

from posthog_otel.bridge.pipeline import Outcome, Pipeline
from posthog_otel.bridge.settings import BridgeSettings
from posthog_otel.client import Client
from posthog_otel.otlp.responses import JSON
from posthog_otel.testing import memory_client

from .test_families_and_handled import node_export


class _HeldClient:
    """A client whose first capture waits until released: the first request stays mid-mapping."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.settings = client.settings
        self.mapping = threading.Event()
        self.release = threading.Event()

    def stats(self) -> dict[str, Any]:
        return self._client.stats()

    def capture_raw(self, *args: Any, **kwargs: Any) -> Any:
        self.mapping.set()
        assert self.release.wait(10)
        return self._client.capture_raw(*args, **kwargs)


def test_a_request_mapped_meanwhile_is_throttled_not_dropped() -> None:
    body = node_export(child_status=2)  # the root and the failing span, 1 exception: may yield 3 events
    client, events = memory_client(max_queue_size=5)
    held = _HeldClient(client)
    pipeline = Pipeline(BridgeSettings.build(api_key="phc_test"))
    first: list[Outcome] = []
    worker = threading.Thread(
        target=lambda: first.append(pipeline.process("traces", body, JSON, held))  # type: ignore[arg-type]
    )
    worker.start()
    assert held.mapping.wait(10)

    second = pipeline.process("traces", body, JSON, client)

    held.release.set()
    worker.join(10)
    assert second.status == 429  # 3 reserved + 3 more would not fit in 5
    assert first[0].status == 200
    client.flush(5)
    assert client.stats()["dropped_total"] == 0
    assert {e["event"] for e in events} >= {"$exception"}
    # the reservation is released: the same request is admitted again
    assert pipeline.process("traces", body, JSON, client).status == 200
