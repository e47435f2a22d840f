"""posthog-python's LLM wrappers as the oracle: the ``$ai_*`` event each call sends.

    found = oracle_events(CASES, lambda ph: PosthogOpenAI(posthog_client=ph, base_url=...))
    found["chat"]["properties"]["$ai_model"]

Each case (a name and a call taking the wrapped client) must send exactly one event; the events
are read from a loopback capture server with the client in ``sync_mode``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import posthog

from posthog_otel.testing.capture_server import CaptureServer

# The OpenAI tool definition the LLM tests send (the fake model server calls it with
# ``fake_model.TOOL_ARGUMENTS``).
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def oracle_events(
    cases: Mapping[str, Callable[[Any], Any]], wrap: Callable[[posthog.Posthog], Any]
) -> dict[str, dict[str, Any]]:
    """Each case's event, as posthog-python's wrapper (``wrap(posthog_client)``) sends it."""
    found: dict[str, dict[str, Any]] = {}
    with CaptureServer() as capture:
        ph = posthog.Posthog("phc_oracle", host=capture.url, sync_mode=True)
        client = wrap(ph)
        for case, call in cases.items():
            before = len(capture.events)
            call(client)
            ph.flush()
            (event,) = capture.events[before:]
            found[case] = event
        ph.shutdown()
    return found
