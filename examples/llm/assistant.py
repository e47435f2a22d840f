"""posthog-otel LLM analytics: an OpenAI call inside a request becomes an ``$ai_generation``
owned by the request's user, with no PostHog code around the call.

Needs: ``pip install ./posthog-otel openai opentelemetry-instrumentation-openai-v2 opentelemetry-util-genai==1.1b0 httpx``
(the instrumentation imports ``httpx`` without requiring it, and its 2.4b0 release imports
a module ``opentelemetry-util-genai`` 1.2 removed). Run it with ``python examples/llm/assistant.py``. It starts a fake OpenAI-compatible model
server on 127.0.0.1 (``posthog_otel.testing.fake_model``), instruments the real ``openai``
client with OpenTelemetry's contrib instrumentation, answers two "requests" of two users, and
prints the AI events PostHog receives. Without ``POSTHOG_HOST`` it also starts a loopback
capture server and exits 0 only if each generation arrived with its user, session, tags,
model, tokens and messages; with ``POSTHOG_API_KEY``/``POSTHOG_HOST`` (e.g. the local sink)
the events go there.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import openai
from opentelemetry import trace
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

import posthog_otel as posthog
from posthog_otel import PosthogSpanProcessor
from posthog_otel.testing.capture_server import CaptureServer
from posthog_otel.testing.fake_model import FakeModelServer

USERS = [("user-42", "session-7", "What is OpenTelemetry?"), ("user-9", "session-3", "Hi!")]


def ask(model: openai.OpenAI, user: str, session: str, question: str) -> str:
    """One web request: the request's context names the user; the LLM call knows nothing."""
    tracer = trace.get_tracer("assistant")
    with (
        tracer.start_as_current_span("POST /assistant", kind=SpanKind.SERVER),
        posthog.new_context(),
    ):
        posthog.identify_context(user)
        posthog.set_context_session(session)
        posthog.tag("feature", "assistant")
        reply = model.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": question},
            ],
        )
        return reply.choices[0].message.content or ""


@contextlib.contextmanager
def destination() -> Iterator[CaptureServer | None]:
    if os.environ.get("POSTHOG_HOST"):
        posthog.setup()
        yield None
        return
    with CaptureServer() as server:
        posthog.setup(api_key="phc_llm_example", host=server.url)
        yield server


def check(events: list[dict[str, Any]]) -> bool:
    generations = [e for e in events if e["event"] == "$ai_generation"]
    ok = len(generations) == len(USERS)
    for (user, session, question), event in zip(USERS, generations, strict=False):
        props = event["properties"]
        print(
            f"$ai_generation  person={event['distinct_id']}  session={props.get('$session_id')}  "
            f"model={props.get('$ai_model')}  tokens={props.get('$ai_input_tokens')}/"
            f"{props.get('$ai_output_tokens')}  latency={props.get('$ai_latency', 0):.3f}s"
        )
        print(f"    input:  {props.get('$ai_input')}")
        print(f"    output: {props.get('$ai_output_choices')}")
        ok = ok and (
            event["distinct_id"] == user
            and props.get("$session_id") == session
            and props.get("feature") == "assistant"
            and props.get("$ai_model") == "gpt-4o-mini"
            and props.get("$ai_input", [{}])[-1].get("content") == question
            and props.get("$ai_trace_id") == props.get("$trace_id")
        )
    return ok


def main() -> int:
    # The instrumentation records prompts and replies only when asked to (as span attributes,
    # in the latest GenAI conventions).
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor())
    trace.set_tracer_provider(provider)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    with FakeModelServer() as fake, destination() as server:
        model = openai.OpenAI(base_url=fake.base_url, api_key="sk-fake", max_retries=0)
        for user, session, question in USERS:
            print(f"{user} asked {question!r} -> {ask(model, user, session, question)!r}")
        provider.force_flush()
        posthog.flush(10)
        if server is None:
            print(f"sent to {os.environ['POSTHOG_HOST']}")
            return 0
        ok = check(server.events)
    print("OK" if ok else "MISSING OR WRONG EVENTS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
