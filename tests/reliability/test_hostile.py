"""Hostile input: property-based tests (hypothesis) and a bounded atheris fuzz run.

Extends ``tests/unit/propagation/test_baggage.py``, ``test_propagator.py``, ``tests/unit/errors/test_exceptions.py``
and ``tests/unit/sink/test_sink_fuzz.py`` (which cover ``parse_header`` on raw strings, dict carriers,
arbitrary text for the stacktrace parser and arbitrary JSON-ish sink bodies) with:

- extraction through every kind of carrier a server hands us (dicts in any case, WSGI
  environs and ASGI scopes through the middleware's request path, ``http.client`` messages
  with repeated headers, requests' case-insensitive dicts, contrib's ASGI getter), and
  re-injection of what was extracted: the outgoing baggage header is valid W3C within the
  limits, and ``X-POSTHOG-*`` values are printable ASCII (no header injection);
- injection of hostile scopes (any keys, unencodable values, objects whose ``str()`` raises);
- the stacktrace parser on *real* tracebacks (chains, groups, recursion, syntax errors,
  multi-line messages) mutated line by line;
- event encoding with lone surrogates, NaN, cycles and odd keys: always strict UTF-8 JSON;
- the sink's ingestion on valid envelopes with mutated events and on encoded bodies
  (gzip, truncated gzip, forms), and the OTLP bridge decoders on arbitrary JSON and bytes.

No exception escapes; limits hold. Fixed example counts and ``derandomize=True`` keep CI
time and results stable; ``POSTHOG_OTEL_LONG=1`` runs 10x more examples and a longer fuzz.
"""

from __future__ import annotations

import base64
import email.message
import gzip
import http.client
import json
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.context import Context

from posthog_otel.context import Scope, context_with_scope, current_scope
from posthog_otel.delivery import encoding as _json
from posthog_otel.errors import FrameOptions, exception_list_from_stacktrace
from posthog_otel.propagation import baggage as bg
from posthog_otel.propagation.destination import with_destination
from posthog_otel.propagation.propagator import PosthogPropagator
from tests.support.procs import ROOT

from ._report import LONG

SCALE = 10 if LONG else 1
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# W3C baggage list-member (key=value, optional properties); ours never have properties.
W3C_MEMBER = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+=[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")


def fixed(examples: int) -> Any:
    return settings(
        max_examples=examples * SCALE,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- strategies -----------------------------------------------------------------------------

any_char_text = st.text(
    alphabet=st.characters(codec=None, categories=None), max_size=300
)  # surrogates and controls included
header_piece = st.one_of(
    any_char_text,
    st.text(
        alphabet=st.sampled_from("posthog.tag.distinct_id=,;%+ \t\r\n\x00\x7fé2F0aZ"), max_size=600
    ),
    st.sampled_from(
        [
            "posthog.distinct_id=u%0D%0ASet-Cookie:%20x=1",
            "posthog.tag.a=1;prop=2",
            "posthog.tag.%F0%9F%92%A9=%F0%9F%92%A9",
            "posthog.tag.k=" + "v" * 5000,
            ",".join(f"posthog.tag.t{i}={i}" for i in range(300)),
            "posthog.session_id=%ff%fe%00",
        ]
    ),
)
header_value = st.one_of(
    header_piece,
    st.binary(max_size=400),
    st.lists(header_piece, max_size=4),
)
NAMES = [
    "baggage",
    "Baggage",
    "BAGGAGE",
    "X-POSTHOG-DISTINCT-ID",
    "x-posthog-distinct-id",
    "X-PostHog-Session-Id",
    "X-POSTHOG-WINDOW-ID",
]
headers_strategy = st.dictionaries(st.sampled_from(NAMES), header_value, max_size=6)


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, list):
        return ",".join(_as_text(v) for v in value)
    return str(value)


def _latin1(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass").decode("latin-1", "replace").encode("latin-1")


# -- carriers -------------------------------------------------------------------------------


def _extract_dict(headers: dict[str, Any]) -> Scope | None:
    return current_scope(PosthogPropagator().extract(headers, Context()))


def _extract_http_message(headers: dict[str, Any]) -> Scope | None:
    """``http.client.HTTPMessage`` (repeated headers) through a getter like contrib's."""
    message = http.client.HTTPMessage()
    for name, value in headers.items():
        for part in value if isinstance(value, list) else [value]:
            message[name] = _as_text(part).replace("\r", "").replace("\n", "")

    class Getter:
        def get(self, carrier: email.message.Message, key: str) -> list[str] | None:
            return carrier.get_all(key)

        def keys(self, carrier: email.message.Message) -> list[str]:
            return list(carrier.keys())

    return current_scope(PosthogPropagator().extract(message, Context(), getter=Getter()))  # type: ignore[arg-type]


def _extract_requests_dict(headers: dict[str, Any]) -> Scope | None:
    from requests.structures import CaseInsensitiveDict

    carrier = CaseInsensitiveDict({k: _as_text(v) for k, v in headers.items()})
    return current_scope(PosthogPropagator().extract(carrier, Context()))


def _asgi_scope(headers: dict[str, Any]) -> dict[str, Any]:
    raw: list[tuple[bytes, bytes]] = []
    for name, value in headers.items():
        for part in value if isinstance(value, list) else [value]:
            data = part if isinstance(part, bytes) else _latin1(str(part))
            raw.append((name.lower().encode(), data))
    return {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "query_string": b"",
        "headers": raw,
        "client": ("10.0.0.1", 1234),
        "server": ("app.test", 80),
    }


def _extract_contrib_asgi_getter(headers: dict[str, Any]) -> Scope | None:
    from opentelemetry.instrumentation.asgi import asgi_getter

    scope = _asgi_scope(headers)
    return current_scope(PosthogPropagator().extract(scope, Context(), getter=asgi_getter))


def _through_request(info: Any) -> Scope | None:
    from posthog_otel.instrumentors._request import RequestOptions, enter_request

    request = enter_request(info, None, RequestOptions())
    assert request is not None
    try:
        return request.scope
    finally:
        request.detach()  # keep the scope readable: closing it would detach it from state


def _extract_asgi_middleware(headers: dict[str, Any]) -> Scope | None:
    from posthog_otel.instrumentors.asgi import request_info_from_scope

    return _through_request(request_info_from_scope(_asgi_scope(headers)))


def _extract_wsgi_middleware(headers: dict[str, Any]) -> Scope | None:
    from posthog_otel.instrumentors.wsgi import request_info_from_environ

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/x",
        "SERVER_NAME": "app.test",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "10.0.0.1",
        "wsgi.url_scheme": "http",
    }
    for name, value in headers.items():  # as PEP 3333 servers do: latin-1 text, joined by ","
        environ["HTTP_" + name.upper().replace("-", "_")] = _latin1(_as_text(value)).decode(
            "latin-1"
        )
    return _through_request(request_info_from_environ(environ))


CARRIERS: dict[str, Callable[[dict[str, Any]], Scope | None]] = {
    "dict": _extract_dict,
    "http_message": _extract_http_message,
    "requests_dict": _extract_requests_dict,
    "contrib_asgi_getter": _extract_contrib_asgi_getter,
    "asgi_middleware": _extract_asgi_middleware,
    "wsgi_middleware": _extract_wsgi_middleware,
}


def _check_state(scope: Scope | None) -> None:
    if scope is None:
        return
    state = scope.resolve()
    for value in (state.distinct_id, state.session_id, state.get("window_id")):
        assert value is None or (0 < len(value) <= 1000 and not CONTROL.search(value)), value
    inbound = [k for k in state.tags if not k.startswith("$")]
    assert len(inbound) <= bg.MAX_INBOUND_TAGS
    for key, value in state.tags.items():
        assert key and not CONTROL.search(key)
        if isinstance(value, str) and not key.startswith("$"):
            assert len(value) <= bg.MAX_VALUE_CHARS and not CONTROL.search(value)
        json.dumps(value)


def _check_injected(carrier: dict[str, str]) -> None:
    header = carrier.get("baggage")
    if header is not None:
        assert len(header.encode()) <= bg.MAX_HEADER_BYTES
        members = header.split(",")
        assert len(members) <= bg.MAX_MEMBERS
        for member in members:
            assert W3C_MEMBER.fullmatch(member), member
            assert len(member) <= bg.MAX_MEMBER_BYTES
    for name, value in carrier.items():
        if name.lower().startswith("x-posthog"):
            assert value.isascii() and value.isprintable() and value.strip() == value, value


@pytest.mark.parametrize("carrier", list(CARRIERS))
@fixed(60)
@given(headers=headers_strategy)
def test_extract_through_any_carrier_then_reinject(carrier: str, headers: dict[str, Any]) -> None:
    scope = CARRIERS[carrier](headers)
    _check_state(scope)
    if scope is not None:
        out: dict[str, str] = {}
        PosthogPropagator().inject(
            out, with_destination("internal", context_with_scope(scope, Context()))
        )
        _check_injected(out)
        if scope.resolve().distinct_id is not None:
            assert "baggage" in out  # identity is never dropped for size
            assert "posthog.distinct_id=" in out["baggage"]


class Unprintable:
    """A value whose ``str()`` raises (``repr()`` works: hypothesis prints examples)."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        return "Unprintable()"


tag_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | any_char_text
    | st.binary(max_size=50)
    | st.just(Unprintable())
    | st.sets(st.integers(), max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_char_text, inner, max_size=3),
    max_leaves=10,
)


@fixed(150)
@given(
    distinct_id=st.one_of(st.none(), any_char_text, st.integers()),
    tags=st.dictionaries(st.one_of(any_char_text, st.integers()), tag_values, max_size=40),
    existing=st.one_of(st.none(), header_piece),
)
def test_inject_any_scope_into_any_existing_header(
    distinct_id: Any, tags: dict[Any, Any], existing: str | None
) -> None:
    scope = Scope(fresh=True)
    scope.distinct_id = distinct_id  # as a buggy caller might set it: not even a string
    scope.tags = tags
    carrier: dict[str, str] = {} if existing is None else {"baggage": existing}
    PosthogPropagator().inject(
        carrier, with_destination("internal", context_with_scope(scope, Context()))
    )
    others = [  # W3C optional whitespace is space and tab only
        m.strip(" \t")
        for m in (existing or "").split(",")
        if m.strip(" \t") and not m.strip(" \t").startswith("posthog.")
    ]
    if existing is None or not others:
        _check_injected(carrier)
    else:  # other members are never touched; ours are valid and fit in
        header = carrier.get("baggage", "")
        ours = [m for m in header.split(",") if m.startswith("posthog.")]
        assert all(W3C_MEMBER.fullmatch(m) for m in ours)
        for name, value in carrier.items():
            if name.lower().startswith("x-posthog"):
                assert value.isascii() and value.isprintable()


# -- the stacktrace parser on real, mutated tracebacks ---------------------------------------


def _raise_chain() -> None:
    try:
        {}["missing"]
    except KeyError as exc:
        raise ValueError("bad\nmulti-line\n  message: ünïcode") from exc


def _recurse(n: int) -> int:
    return _recurse(n + 1)


def _real_tracebacks() -> list[tuple[str, str, str]]:
    """(traceback text, outermost type, root type) of real exceptions."""
    found: list[tuple[str, str, str]] = []

    def record(fn: Callable[[], Any], outer: str, root: str) -> None:
        try:
            fn()
        except BaseException as exc:  # any exception is a sample
            found.append(("".join(traceback.format_exception(exc)), outer, root))

    record(_raise_chain, "ValueError", "KeyError")
    record(lambda: _recurse(0), "RecursionError", "RecursionError")
    record(lambda: compile("def f(:\n  pass", "bad.py", "exec"), "SyntaxError", "SyntaxError")

    def context_chain() -> None:
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            raise OSError(2, "No such file", "/tmp/x") from None

    record(context_chain, "FileNotFoundError", "FileNotFoundError")
    if sys.version_info >= (3, 11):

        def group() -> None:
            errors: list[Exception] = []
            for n in range(3):
                try:
                    _raise_chain() if n else int("x")
                except Exception as exc:
                    errors.append(exc)
            raise ExceptionGroup("several", errors)  # noqa: F821

        record(group, "ExceptionGroup", "")
    return found


REAL = _real_tracebacks()
JUNK_LINES = [
    "Traceback (most recent call last):",
    '  File "/x.py", line 99999999999999999999999, in f',
    '  File "", line -1, in ',
    "  [Previous line repeated 999999999999 more times]",
    "During handling of the above exception, another exception occurred:",
    "  | ExceptionGroup: g (999 sub-exceptions)",
    "  +-+---------------- 1 ----------------",
    "    ~~~~~^^^^^",
    "\x00\x1b[31m",
    "Error: " + "x" * 5000,
]
mutation = st.tuples(
    st.sampled_from(["delete", "duplicate", "insert", "replace", "swap", "digits", "truncate"]),
    st.integers(0, 10_000),
    st.one_of(st.sampled_from(JUNK_LINES), any_char_text),
)


def _mutate(text: str, ops: list[tuple[str, int, str]]) -> str:
    lines = text.splitlines()
    for op, where, junk in ops:
        if not lines:
            lines = [junk]
            continue
        i = where % len(lines)
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines[i:i] = [lines[i]] * (1 + where % 50)
        elif op == "insert":
            lines.insert(i, junk)
        elif op == "replace":
            lines[i] = junk
        elif op == "swap":
            j = (where // 7) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "digits":  # huge numbers, past int()'s 4300-digit limit too
            lines[i] = re.sub(r"\d+", "9" * (1 + where % 6000), lines[i])
        else:
            return "\n".join(lines)[: where % max(1, len(text))]
    return "\n".join(lines)


def _check_entries(entries: list[dict[str, Any]]) -> None:
    assert isinstance(entries, list) and 1 <= len(entries) <= 50
    json.dumps(entries, allow_nan=False)
    for entry in entries:
        assert isinstance(entry["type"], str) and entry["type"]
        assert isinstance(entry["value"], str)
        frames = entry.get("stacktrace", {}).get("frames", [])
        assert len(frames) <= 200
        for frame in frames:
            assert isinstance(frame["function"], str) and isinstance(frame["filename"], str)
            assert isinstance(frame.get("lineno", 0), int) and 0 <= frame.get("lineno", 0) < 2**31


def test_real_tracebacks_parse_to_their_exceptions() -> None:
    options = FrameOptions(project_root=str(ROOT))
    for text, outer, root in REAL:
        entries = exception_list_from_stacktrace(text, options=options)
        _check_entries(entries)
        assert entries[0]["type"] == outer, (outer, entries[0]["type"])
        if root:
            assert entries[-1]["type"] == root
        assert any(e.get("stacktrace") for e in entries)


@fixed(120)
@given(sample=st.sampled_from(REAL), ops=st.lists(mutation, min_size=1, max_size=8))
def test_mutated_real_tracebacks_never_raise(sample: tuple[str, str, str], ops: list[Any]) -> None:
    text = _mutate(sample[0], ops)
    started = time.perf_counter()
    entries = exception_list_from_stacktrace(
        text, exc_type=sample[1], message="m", options=FrameOptions(project_root=str(ROOT))
    )
    assert time.perf_counter() - started < 5.0  # no pathological backtracking
    _check_entries(entries)
    assert entries[0]["type"] == sample[1]


def test_line_numbers_of_thousands_of_digits_are_handled() -> None:
    text = (
        'Traceback (most recent call last):\n  File "/x.py", line '
        + "9" * 5000
        + ", in f\n    g()\nValueError: v"
    )
    entries = exception_list_from_stacktrace(text, exc_type="ValueError")
    _check_entries(entries)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "hostile",
    ["    at " + "f (" * 80_000, "    at f" + " (x)" * 60_000 + " x"],
    ids=["open", "closed"],
)
def test_node_frame_lines_full_of_parentheses_parse_in_linear_time(hostile: str) -> None:
    # Any " (" might open a Node frame's location and any ")" close it; splitting
    # "at fn (location)" by trying every pair takes minutes on lines this long.
    text = f"TypeError: boom\n{hostile}\n    at handler (/srv/app.js:3:7)\n"
    [entry] = exception_list_from_stacktrace(text, options=FrameOptions(local_source=False))
    assert (entry["type"], entry["value"]) == ("TypeError", f"boom\n{hostile}")
    assert entry["stacktrace"]["frames"] == [
        {
            "platform": "node:javascript",
            "filename": "/srv/app.js",
            "function": "handler",
            "lineno": 3,
            "colno": 7,
            "in_app": True,  # an app path, not node_modules or a node: internal
        }
    ]


# -- event encoding -----------------------------------------------------------------------------


class Cycle(dict[str, Any]):
    pass


@fixed(150)
@given(
    props=st.dictionaries(
        st.one_of(any_char_text, st.integers(), st.floats()), tag_values, max_size=8
    )
)
def test_encoded_events_are_always_strict_utf8_json(props: dict[Any, Any]) -> None:
    cyclic = Cycle(props)
    cyclic["self"] = cyclic
    for properties in (props, cyclic):
        event = {"event": "e\ud800", "distinct_id": "d\udcff", "properties": properties}
        raw = _json.dumps_event(event)
        text = raw.decode("utf-8")  # strict: no lone surrogates, valid UTF-8
        parsed = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
        assert parsed["event"].startswith("e")
        text.encode("utf-8")


def test_a_property_whose_str_raises_does_not_cost_the_event() -> None:
    """Regression: ``str()`` raising inside the encoder dropped the whole event as invalid."""
    from posthog_otel import Client
    from posthog_otel.testing.capture_server import CaptureServer

    with CaptureServer() as server:
        client = Client("phc_k", host=server.url, flush_interval=0.01)
        client.capture("odd", distinct_id="d", properties={"x": Unprintable(), Unprintable(): 1})
        assert client.flush(5)
        (event,) = server.events
        client.shutdown(1)
    assert event["properties"]["x"] is None  # an unknown object goes as null (posthog-python)
    assert event["properties"]["<unprintable Unprintable>"] == 1


# -- the sink's ingestion ---------------------------------------------------------------------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_char_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_char_text, inner, max_size=4),
    max_leaves=20,
)
FIELDS = ["event", "distinct_id", "properties", "timestamp", "uuid", "$set", "$set_once", "type"]


def _valid_event() -> dict[str, Any]:
    return {
        "event": "$exception",
        "distinct_id": "u1",
        "uuid": "0190d9a8-0d4c-7b58-9d0b-9bd3b8f7c3a1",
        "timestamp": "2026-01-02T03:04:05Z",
        "properties": {
            "$exception_list": [
                {
                    "type": "ValueError",
                    "value": "x",
                    "stacktrace": {"type": "raw", "frames": [{"function": "f", "lineno": 1}]},
                }
            ]
        },
    }


def _ingest(
    raw: bytes, headers: dict[str, str], query: dict[str, list[str]], endpoint: str
) -> None:
    from posthog_otel.sink.ingest import ingest_capture

    answer = ingest_capture(raw, endpoint=endpoint, headers=headers, query=query, now=time.time())
    assert answer.status in (200, 400, 401, 413)
    assert answer.records
    json.dumps(answer.body)
    if answer.status != 200:
        assert all(record.status == "rejected" for record in answer.records)


@fixed(100)
@given(
    replacements=st.dictionaries(st.sampled_from(FIELDS), JSONISH, max_size=3),
    nested=st.dictionaries(
        st.sampled_from(["type", "value", "stacktrace", "frames", "mechanism"]), JSONISH, max_size=2
    ),
    encoding=st.sampled_from(
        ["json", "gzip", "gzip_js", "form_base64", "form_plain", "truncated_gzip"]
    ),
    endpoint=st.sampled_from(["/batch/", "/e/", "/i/v0/e/", "/capture/"]),
)
def test_sink_ingests_mutated_events_in_every_encoding(
    replacements: dict[str, Any], nested: dict[str, Any], encoding: str, endpoint: str
) -> None:
    event = _valid_event()
    event.update(replacements)
    props = event.get("properties")
    if isinstance(props, dict) and isinstance(props.get("$exception_list"), list):
        props["$exception_list"][0].update(nested)
    body = json.dumps({"api_key": "phc_k", "batch": [event, _valid_event()]}).encode()
    headers: dict[str, str] = {}
    query: dict[str, list[str]] = {}
    if encoding == "gzip":
        body, headers = gzip.compress(body), {"content-encoding": "gzip"}
    elif encoding == "gzip_js":
        body, query = gzip.compress(body), {"compression": ["gzip-js"]}
    elif encoding == "truncated_gzip":
        body, headers = gzip.compress(body)[: len(body) // 3], {"content-encoding": "gzip"}
    elif encoding == "form_base64":
        body = b"data=" + base64.b64encode(body)
        headers = {"content-type": "application/x-www-form-urlencoded"}
    elif encoding == "form_plain":
        body = b"data=" + body
        headers = {"content-type": "application/x-www-form-urlencoded"}
    _ingest(body, headers, query, endpoint)


def test_sink_survives_degenerate_json() -> None:
    for raw in (
        b"[" * 200_000,
        b'{"api_key":"k","batch":[{"event":"e","distinct_id":' + b"9" * 10_000 + b"}]}",
        b'{"api_key":"k","batch":[{"event":"e","distinct_id":"d","timestamp":1e999}]}',
        b'{"api_key":"k","batch":[{"event":"e","distinct_id":"d","properties":{"x":NaN}}]}',
        b'{"api_key":"k","batch":[{"event":"\xff\xfe","distinct_id":"d"}]}',
        gzip.compress(b"0" * (25 * 1024 * 1024)),
    ):
        _ingest(raw, {}, {}, "/batch/")


def test_sink_refuses_lone_surrogates_and_stores_the_refusal(tmp_path: Path) -> None:
    from posthog_otel.sink.ingest import ingest_capture
    from posthog_otel.sink.store import EventStore

    raw = b'{"api_key":"k","batch":[{"event":"\\ud800x","distinct_id":"\\udfff"}]}'
    answer = ingest_capture(raw, endpoint="/batch/", headers={}, query={}, now=time.time())
    assert (answer.status, answer.body["code"]) == (400, "invalid_payload")
    store = EventStore(tmp_path / "s.sqlite3")
    try:
        assert len(store.insert(answer.records)) == 1  # the refusal is kept, as sent
        (row,) = store.query()
        assert (row.status, row.code) == ("rejected", "invalid_payload")
        assert row.raw["body"] == raw.decode()
    finally:
        store.close()


# -- the OTLP bridge decoders -----------------------------------------------------------------

OTLP_KEYS = st.sampled_from(
    [
        "resourceSpans",
        "scopeSpans",
        "spans",
        "resourceLogs",
        "scopeLogs",
        "logRecords",
        "traceId",
        "spanId",
        "parentSpanId",
        "name",
        "kind",
        "attributes",
        "key",
        "value",
        "stringValue",
        "intValue",
        "doubleValue",
        "boolValue",
        "arrayValue",
        "kvlistValue",
        "bytesValue",
        "values",
        "events",
        "status",
        "code",
        "message",
        "timeUnixNano",
        "startTimeUnixNano",
        "endTimeUnixNano",
        "severityNumber",
        "body",
        "resource",
        "flags",
    ]
)
OTLP_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "5b8efff798038103d269b633813fc60c",
            "eee19b7ec3c1b174",
            "posthog.event",
            "exception.stacktrace",
            "1e400",
        ]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(OTLP_KEYS, inner, max_size=5),
    max_leaves=40,
)


@fixed(150)
@given(document=OTLP_JSON, raw=st.binary(max_size=300), signal=st.sampled_from(["traces", "logs"]))
def test_bridge_decoders_raise_only_decode_error(document: Any, raw: bytes, signal: str) -> None:
    decode = pytest.importorskip("posthog_otel.otlp.decode")
    from posthog_otel.bridge.logs import LogMapper
    from posthog_otel.otlp.responses import JSON, PROTOBUF
    from posthog_otel.spans.mapping import MappingOptions, SpanMapper

    spans = SpanMapper(MappingOptions(capture_spans="all"))
    logs = LogMapper(spans, min_severity=1)
    for body, content_type in ((json.dumps(document).encode(), JSON), (raw, PROTOBUF), (raw, JSON)):
        try:
            if signal == "traces":
                batch = decode.decode_traces(body, content_type, want=lambda *a: True)
                for span in batch.items:
                    json.dumps([e.properties for e in spans.events_for(span)], default=str)
            else:
                batch = decode.decode_logs(body, content_type, want=lambda *a: True)
                for record in batch.items:
                    json.dumps([e.properties for e in logs.events_for(record)], default=str)
        except decode.DecodeError:
            continue
        assert 0 <= batch.rejected <= batch.total


# -- atheris -------------------------------------------------------------------------------------


def test_atheris_fuzz_run_is_clean(tmp_path: Path) -> None:
    """A bounded coverage-guided run over the same targets (atheris, when installed)."""
    pytest.importorskip("atheris")
    runs = 40_000 if LONG else 4_000
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.reliability._atheris_fuzz",
            f"-runs={runs}",
            f"-max_total_time={120 if LONG else 15}",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
            "-print_final_stats=1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-5000:])
    assert not list(tmp_path.glob("crash-*")), done.stderr[-5000:]
    executed = re.search(r"stat::number_of_executed_units: (\d+)", done.stderr)
    assert executed and int(executed[1]) > 100, done.stderr[-3000:]
    print(f"\n[reliability:atheris] executed {executed[1]} inputs")
