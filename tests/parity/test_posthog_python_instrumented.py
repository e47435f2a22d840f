"""posthog-python behaves as before under PosthogPythonInstrumentor: the same calls, run with
and without it, send the same events; the only difference allowed is ``$trace_id``/``$span_id``
added inside a span.

Each run uses a real posthog-python client (``sync_mode``) posting to its own loopback
CaptureServer; the events are normalised (random uuids, timestamps and personless ids) and
diffed.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
from collections.abc import Callable
from typing import Any

import posthog
import posthog.contexts as python_contexts
import pytest
from opentelemetry.sdk.trace import TracerProvider

from posthog_otel.instrumentors.posthog_python import PosthogPythonInstrumentor
from posthog_otel.testing.capture_server import CaptureServer

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ADDED = ("$trace_id", "$span_id")
_tracer = TracerProvider().get_tracer("parity")

Scenario = Callable[[Any], None]


def _in_context(client: Any) -> None:
    with python_contexts.new_context():
        python_contexts.identify_context("user-1")
        python_contexts.set_context_session("session-1")
        if hasattr(posthog, "set_context_device_id"):  # not in posthog-python 6.x
            python_contexts.set_context_device_id("device-1")
        python_contexts.tag("plan", "pro")
        client.capture("signed_up", properties={"source": "ad", "plan": "caller wins"})


def _outside_any_context(client: Any) -> None:
    python_contexts.tag("ignored", True)
    client.capture("anonymous")


def _nested_and_fresh(client: Any) -> None:
    with python_contexts.new_context():
        python_contexts.identify_context("outer")
        python_contexts.tag("level", "outer")
        with python_contexts.new_context():
            python_contexts.tag("inner", 1)
            client.capture("nested")
        with python_contexts.new_context(fresh=True):
            python_contexts.tag("only", "fresh")
            client.capture("fresh")
        client.capture("after")


def _scoped_and_client_context(client: Any) -> None:
    @python_contexts.scoped()
    def job() -> None:
        python_contexts.tag("job", "j1")
        client.capture("job_ran")

    job()
    with client.new_context():
        python_contexts.identify_context("via-client")
        if hasattr(client, "tag"):  # the Client context methods came after 6.0
            client.identify_context("via-client")
            client.tag("k", "v")
        client.capture("client_context")


def _exception_leaving_a_context(client: Any) -> None:
    with contextlib.suppress(ValueError), client.new_context(capture_exceptions=True):
        python_contexts.identify_context("boom-user")
        python_contexts.tag("where", "checkout")
        raise ValueError("card declined")


def _capture_exception_in_context(client: Any) -> None:
    with python_contexts.new_context():
        python_contexts.identify_context("err-user")
        python_contexts.tag("step", 3)
        try:
            {}["missing"]
        except KeyError as exc:
            client.capture_exception(exc)
            client.capture_exception(exc)  # once per exception


def _person_and_group_calls(client: Any) -> None:
    with python_contexts.new_context():
        python_contexts.identify_context("person-1")
        python_contexts.set_context_session("s-9")
        client.set(properties={"email": "a@example.com"})
        client.set_once(properties={"first": "x"})
        client.group_identify("company", "acme", {"name": "Acme"})
        client.alias("old-id", "person-1")


def _inside_a_span(client: Any) -> None:
    with python_contexts.new_context(), _tracer.start_as_current_span("request"):
        python_contexts.identify_context("span-user")
        client.capture("in_span")


SCENARIOS: dict[str, Scenario] = {
    "in_context": _in_context,
    "outside_any_context": _outside_any_context,
    "nested_and_fresh": _nested_and_fresh,
    "scoped_and_client_context": _scoped_and_client_context,
    "exception_leaving_a_context": _exception_leaving_a_context,
    "capture_exception_in_context": _capture_exception_in_context,
    "person_and_group_calls": _person_and_group_calls,
    "inside_a_span": _inside_a_span,
}


def _events(scenario: Scenario, *, instrumented: bool) -> list[dict[str, Any]]:
    instrumentor = PosthogPythonInstrumentor()
    with CaptureServer() as server:
        client = posthog.Posthog("phc_parity", host=server.url, sync_mode=True)
        if instrumented:
            instrumentor.instrument(client=client)
        try:
            scenario(client)
            client.flush()
        finally:
            if instrumented:
                instrumentor.uninstrument()
            with contextlib.suppress(Exception):  # 6.0's sync_mode cannot shut down
                client.shutdown()
        events = [event for request in server.requests for event in _batch(request.body)]
        # the server's port shows in some values ($exception_personURL)
        return [json.loads(json.dumps(event).replace(server.url, "<host>")) for event in events]


def _batch(body: Any) -> list[dict[str, Any]]:
    return list(body.get("batch", [])) if isinstance(body, dict) else []


def _normalise(event: dict[str, Any], *, drop_added: bool) -> dict[str, Any]:
    event = json.loads(json.dumps(event))
    for key in ("uuid", "timestamp"):
        event.pop(key, None)
    if isinstance(event.get("distinct_id"), str) and _UUID.match(event["distinct_id"]):
        event["distinct_id"] = "<random>"
    props = event.get("properties") or {}
    if isinstance(props.get("$context_tags"), list):
        props["$context_tags"] = sorted(props["$context_tags"])
    for key in ("$exception_fingerprint",):
        props.pop(key, None)
    for entry in props.get("$exception_list") or []:
        entry.pop("id", None)
    if drop_added:
        for key in _ADDED:
            props.pop(key, None)
    return event


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_posthog_python_sends_the_same_events_when_instrumented(name: str) -> None:
    scenario = SCENARIOS[name]
    before = _events(scenario, instrumented=False)
    after = _events(scenario, instrumented=True)
    assert before, "the scenario sent nothing"
    expected = [_normalise(e, drop_added=False) for e in before]
    got = [_normalise(e, drop_added=True) for e in after]
    if expected != got:
        diff = "\n".join(
            difflib.unified_diff(
                json.dumps(expected, indent=1, sort_keys=True).splitlines(),
                json.dumps(got, indent=1, sort_keys=True).splitlines(),
                "without",
                "with",
                lineterm="",
            )
        )
        pytest.fail(f"posthog-python's events changed under the instrumentor:\n{diff}")
    added = [
        {k: e["properties"][k] for k in _ADDED if k in e["properties"]}
        for e in after
        if any(k in e["properties"] for k in _ADDED)
    ]
    if name == "inside_a_span":
        assert added and all(len(ids["$trace_id"]) == 32 for ids in added)
    else:
        assert added == []
