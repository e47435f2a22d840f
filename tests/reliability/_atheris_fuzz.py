"""Coverage-guided fuzzing (atheris) of the hostile-input surfaces; run by test_hostile.

    python -m tests.reliability._atheris_fuzz -runs=4000 -max_total_time=15

The first byte picks a target: baggage header parsing, propagator extraction from a dict
carrier (and re-injection), the stacktrace parser, the sink's capture ingestion, the OTLP
bridge decoders. Any exception escaping a target is a crash (libFuzzer writes the input).
"""

from __future__ import annotations

import contextlib
import sys
import time

import atheris

with atheris.instrument_imports(include=["posthog_otel"]):
    from opentelemetry.context import Context

    from posthog_otel.context import context_with_scope, current_scope
    from posthog_otel.errors import exception_list_from_stacktrace
    from posthog_otel.propagation import baggage
    from posthog_otel.propagation.propagator import PosthogPropagator
    from posthog_otel.sink.ingest import ingest_capture

    try:
        from posthog_otel.otlp.decode import DecodeError, decode_logs, decode_traces
        from posthog_otel.otlp.responses import JSON, PROTOBUF
    except ImportError:  # the bridge's optional dependencies
        decode_traces = None  # type: ignore[assignment]

PROPAGATOR = PosthogPropagator()


def _bridge(data: bytes, content_type: str) -> None:
    if decode_traces is None:
        return
    for decode in (decode_traces, decode_logs):
        with contextlib.suppress(DecodeError):
            decode(data, content_type, want=lambda *a: True)  # type: ignore[operator]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    target, rest = data[0] % 6, data[1:]
    text = rest.decode("utf-8", "surrogateescape")
    if target == 0:
        inbound = baggage.parse_header(text)
        assert len(inbound.tags) <= baggage.MAX_INBOUND_TAGS
    elif target == 1:
        half = len(text) // 2
        carrier = {"baggage": text[:half], "X-POSTHOG-DISTINCT-ID": text[half:]}
        scope = current_scope(PROPAGATOR.extract(carrier, Context()))
        if scope is not None:
            out: dict[str, str] = {}
            PROPAGATOR.inject(out, context_with_scope(scope, Context()))
            assert len(out.get("baggage", "")) <= baggage.MAX_HEADER_BYTES
    elif target == 2:
        entries = exception_list_from_stacktrace(text, exc_type="Fuzz")
        assert 1 <= len(entries) <= 50
    elif target == 3:
        answer = ingest_capture(rest, endpoint="/batch/", headers={}, query={}, now=time.time())
        assert answer.status in (200, 400, 401, 413)
    elif target == 4:
        _bridge(rest, JSON)
    else:
        _bridge(rest, PROTOBUF)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
