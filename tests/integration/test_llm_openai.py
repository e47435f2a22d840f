"""LLM analytics end to end: the real ``openai`` client, instrumented by contrib's
``opentelemetry-instrumentation-openai-v2`` or OpenLLMetry's ``opentelemetry-instrumentation-
openai``, called inside requests of a Flask app whose context identifies the user, against a
loopback fake model server. The same calls made through posthog-python's own OpenAI wrapper
(``posthog.ai.openai.OpenAI``) are the differential oracle: where both send an ``$ai_*`` key,
the values must be equal."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import flask
import openai
import pytest
import requests
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from posthog.ai.openai import OpenAI as PosthogOpenAI

from posthog_otel import PosthogSpanProcessor
from posthog_otel.instrumentors.flask import instrument_app
from posthog_otel.testing import CapturedEvents, memory_client
from posthog_otel.testing.fake_model import FakeModelServer
from tests.support.e2e import HEADERS
from tests.support.llm_oracle import OPENAI_TOOLS as TOOLS
from tests.support.llm_oracle import oracle_events
from tests.support.routing import route_to
from tests.support.servers import wsgi_server

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hello there"},
]

# One call per case: (name, function of an OpenAI client).
Call = Callable[[Any], Any]


def _chat(client: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.5, max_tokens=20
    )


def _stream(client: Any) -> Any:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def _tools(client: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], tools=TOOLS
    )


def _embed(client: Any) -> Any:
    return client.embeddings.create(model="text-embedding-3-small", input="some text")


def _fail(status: int) -> Call:
    def call(client: Any) -> Any:
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(
                model=f"fail-{status}", messages=[{"role": "user", "content": "x"}]
            )

    return call


CASES: dict[str, Call] = {
    "chat": _chat,
    "stream": _stream,
    "tools": _tools,
    "embed": _embed,
    "429": _fail(429),
    "500": _fail(500),
}
EVENT = {"embed": "$ai_embedding"}
_CONTENT_SWITCHES = {  # each library's switch for content on span attributes
    "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only",
    "TRACELOOP_TRACE_CONTENT": "true",
}


@pytest.fixture(scope="module")
def oracle(model: FakeModelServer) -> dict[str, dict[str, Any]]:
    """posthog-python's wrapper: the ``$ai_*`` properties it sends for each case."""
    return oracle_events(
        CASES,
        lambda ph: PosthogOpenAI(
            posthog_client=ph, base_url=model.base_url, api_key="sk-test", max_retries=0
        ),
    )


def _instrumentor(kind: str) -> Any:
    if kind == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        return OpenAIInstrumentor()
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetry

    return OpenLLMetry()


@pytest.fixture(scope="module", params=["openai-v2", "openllmetry"])
def instrumented(
    request: pytest.FixtureRequest, oracle: dict[str, dict[str, Any]]
) -> Iterator[tuple[str, TracerProvider, CapturedEvents]]:
    """One instrumentation at a time, instrumented once (OpenLLMetry's streams are wrapped
    twice after an uninstrument/instrument cycle), after the oracle ran uninstrumented."""
    kind = request.param
    saved = {name: os.environ.get(name) for name in _CONTENT_SWITCHES}
    os.environ.update(_CONTENT_SWITCHES)  # content as span attributes, latest conventions
    client, events = memory_client()
    sdk = TracerProvider()
    sdk.add_span_processor(PosthogSpanProcessor(client))
    route_to(sdk)
    instrumentor = _instrumentor(kind)
    instrumentor.instrument(tracer_provider=sdk)
    try:
        yield kind, sdk, events
    finally:
        instrumentor.uninstrument()
        sdk.shutdown()
        client.shutdown(0)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _app(model: FakeModelServer, sdk: TracerProvider) -> flask.Flask:
    app = flask.Flask("assistant")
    client = openai.OpenAI(base_url=model.base_url, api_key="sk-test", max_retries=0)

    @app.route("/ask/<case>")
    def ask(case: str) -> str:
        import posthog_otel

        posthog_otel.tag("feature", "assistant")
        CASES[case](client)
        return "ok"

    FlaskInstrumentor.instrument_app(app, tracer_provider=sdk)
    return instrument_app(app)


def _ours(
    events: CapturedEvents, sdk: TracerProvider, model: FakeModelServer
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Each case's AI event and its request's event, from requests of the Flask app."""
    app = _app(model, sdk)
    found = {}
    with wsgi_server(app) as url:
        for case in CASES:
            before = len(events)
            response = requests.get(f"{url}/ask/{case}", headers=HEADERS, timeout=10)
            assert response.status_code == 200, response.text
            assert sdk.force_flush(5_000)
            new = events.all[before:]
            ai = [e for e in new if e["event"].startswith("$ai_")]
            assert [e["event"] for e in ai] == [EVENT.get(case, "$ai_generation")], new
            (request_event,) = [e for e in new if e["event"].startswith("GET")]
            found[case] = (ai[0], request_event)
    return found


def test_generations_belong_to_the_requests_person_with_model_tokens_and_content(
    instrumented: tuple[str, TracerProvider, CapturedEvents], model: FakeModelServer
) -> None:
    _kind, sdk, events = instrumented
    ours = _ours(events, sdk, model)
    for case, (event, request_event) in ours.items():
        props = event["properties"]
        assert event["distinct_id"] == "browser-user", case
        assert props["$session_id"] == "browser-session", case
        assert props["feature"] == "assistant", case
        assert props["$ai_trace_id"] == request_event["properties"]["$trace_id"], case
        assert props["$ai_provider"] == "openai", case
        assert props["$ai_latency"] > 0, case
    chat = ours["chat"][0]["properties"]
    assert chat["$ai_model"] == "gpt-4o-mini"
    assert chat["$ai_input"] == MESSAGES
    assert chat["$ai_output_choices"] == [
        {"role": "assistant", "content": [{"type": "text", "text": "You said: hello there"}]}
    ]
    assert (chat["$ai_input_tokens"], chat["$ai_output_tokens"]) == (4, 4)
    assert (chat["$ai_temperature"], chat["$ai_max_tokens"]) == (0.5, 20)
    stream = ours["stream"][0]["properties"]  # one event with the totals
    assert stream["$ai_output_choices"][0]["content"][0]["text"] == "You said: stream me please"
    assert stream["$ai_output_tokens"] == 5
    tool_call = ours["tools"][0]["properties"]["$ai_output_choices"][0]["content"][0]
    assert tool_call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert ours["embed"][0]["properties"]["$ai_input_tokens"] == 2
    for case in ("429", "500"):
        props = ours[case][0]["properties"]
        assert props["$ai_is_error"] is True and props["$ai_model"] == f"fail-{case}"
        assert f"fake failure {case}" in props["$ai_error"] or "Error" in props["$ai_error"]
        assert props["$ai_http_status"] == int(case)
    assert chat["$ai_http_status"] == 200 and chat["$ai_lib"] == "posthog-otel"


# keys both libraries send whose values must agree where both send them
COMPARED = (
    "$ai_model",
    "$ai_provider",
    "$ai_input",
    "$ai_output_choices",
    "$ai_input_tokens",
    "$ai_output_tokens",
    "$ai_cache_read_input_tokens",
    "$ai_tools",
    "$ai_is_error",
    "$ai_error",
    "$ai_stop_reason",
    "$ai_base_url",
    "$ai_http_status",
)


def test_same_ai_properties_as_posthog_pythons_openai_wrapper(
    instrumented: tuple[str, TracerProvider, CapturedEvents],
    model: FakeModelServer,
    oracle: dict[str, dict[str, Any]],
) -> None:
    kind, sdk, events = instrumented
    ours = _ours(events, sdk, model)
    compared: dict[str, list[str]] = {}
    differences = []
    for case, (event, _) in ours.items():
        theirs = oracle[case]
        assert theirs["event"] == event["event"], case
        for key in COMPARED:
            mine, expected = event["properties"].get(key), theirs["properties"].get(key)
            if mine is None or expected is None:
                continue  # one side does not know it (the instrumentation did not record it)
            compared.setdefault(case, []).append(key)
            if mine != expected:
                differences.append((case, key, mine, expected))
    assert differences == []
    # the comparison compared something real in every case
    for case in CASES:
        assert {"$ai_model", "$ai_provider"} <= set(compared[case]), (case, compared.get(case))
    assert "$ai_input" in compared["chat"] and "$ai_output_choices" in compared["chat"]
    assert "$ai_input_tokens" in compared["chat"] and "$ai_is_error" in compared["429"]
    assert "$ai_error" in compared["500"] and "$ai_output_choices" in compared["tools"]
    for case in ("chat", "stream", "embed", "429", "500"):
        assert "$ai_http_status" in compared[case], case
    if kind == "openllmetry":  # the one that records tool definitions and cache reads
        assert "$ai_tools" in compared["tools"]
        assert "$ai_cache_read_input_tokens" in compared["chat"]
