"""The sink's capture endpoints over real HTTP: what is accepted, what is refused and why."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import threading
import uuid
from typing import Any

import pytest
import requests

from posthog_otel.sink import SinkServer
from posthog_otel.sink.store import key_fingerprint
from tests.support.sink_helpers import KEY, batch, event, post

ENDPOINTS = ["/batch/", "/capture/", "/e/", "/i/v0/e/", "/batch", "/i/v0/e"]


@pytest.mark.parametrize("compress", [False, True], ids=["json", "gzip"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_endpoint_accepts_a_batch(
    posthog_sink: SinkServer, endpoint: str, compress: bool
) -> None:
    sent = event(properties={"plan": "pro", "$session_id": "s-1", "$trace_id": "AB" * 16})
    response = post(posthog_sink.url + endpoint, batch(sent), compress=compress)
    assert response.status_code == 200
    assert response.json() == {"status": "Ok"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    (stored,) = posthog_sink.events()
    assert stored["endpoint"] == endpoint
    assert stored["status"] == "accepted"
    assert stored["event"] == "signed_up"
    assert stored["distinct_id"] == "u1"
    assert stored["uuid"] == sent["uuid"]
    assert stored["session_id"] == "s-1"
    assert stored["trace_id"] == "ab" * 16  # normalised to lowercase
    assert stored["properties"]["plan"] == "pro"
    assert stored["api_key"] == key_fingerprint(KEY) and KEY not in json.dumps(stored)
    assert stored["raw"] == sent


@pytest.mark.parametrize("endpoint", ["/e/", "/i/v0/e/", "/capture/"])
def test_single_event_bodies(posthog_sink: SinkServer, endpoint: str) -> None:
    single = {"api_key": KEY, **event("clicked")}
    assert post(posthog_sink.url + endpoint, single).status_code == 200
    # posthog-js style: the token inside properties, gzip announced in the query string
    browser = event("$pageview", properties={"token": KEY, "$current_url": "http://x/"})
    response = requests.post(
        posthog_sink.url + endpoint + "?compression=gzip-js",
        data=gzip.compress(json.dumps(browser).encode()),
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert response.status_code == 200
    assert [e["event"] for e in posthog_sink.events()] == ["clicked", "$pageview"]


def test_a_list_of_events_and_a_base64_form(posthog_sink: SinkServer) -> None:
    listed = [{**event("a"), "api_key": KEY}, {**event("b"), "api_key": KEY}]
    assert post(posthog_sink.url + "/batch/", listed).status_code == 200
    encoded = base64.b64encode(json.dumps(batch(event("c"))).encode()).decode()
    response = requests.post(
        posthog_sink.url + "/e/",
        data={"data": encoded, "compression": "base64"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert [e["event"] for e in posthog_sink.events()] == ["a", "b", "c"]


def _exception_event(frames: list[dict[str, Any]]) -> dict[str, Any]:
    entry = {
        "type": "ValueError",
        "value": "boom",
        "module": None,
        "mechanism": {"type": "generic", "handled": False},
        "stacktrace": {"type": "raw", "frames": frames},
    }
    return event("$exception", properties={"$exception_list": [entry]})


GOOD_FRAME = {
    "platform": "python",
    "filename": "app.py",
    "abs_path": "/srv/app.py",
    "function": "handler",
    "module": "app",
    "lineno": 12,
    "pre_context": ["def handler():"],
    "context_line": "    raise ValueError('boom')",
    "post_context": [],
    "in_app": True,
}

BAD = [
    ("missing_api_key", batch(event(), api_key=None), 401, "missing_api_key"),
    (
        "no_event_name",
        batch({k: v for k, v in event().items() if k != "event"}),
        400,
        "missing_event_name",
    ),
    ("empty_event_name", batch(event("")), 400, "invalid_event_name"),
    ("event_name_not_text", batch(event(42)), 400, "invalid_event_name"),  # type: ignore[arg-type]
    (
        "no_distinct_id",
        batch({k: v for k, v in event().items() if k != "distinct_id"}),
        400,
        "missing_distinct_id",
    ),
    ("empty_distinct_id", batch(event(distinct_id="  ")), 400, "invalid_distinct_id"),
    ("object_distinct_id", batch(event(distinct_id={"id": 1})), 400, "invalid_distinct_id"),
    ("properties_not_object", batch(event(properties=["x"])), 400, "invalid_properties"),
    ("set_not_object", batch(event(**{"$set": "name"})), 400, "invalid_properties"),
    (
        "exception_without_list",
        batch(event("$exception", properties={"$exception_type": "E"})),
        400,
        "invalid_exception_list",
    ),
    (
        "exception_empty_list",
        batch(event("$exception", properties={"$exception_list": []})),
        400,
        "invalid_exception_list",
    ),
    (
        "exception_entry_without_type",
        batch(event("$exception", properties={"$exception_list": [{"value": "x"}]})),
        400,
        "invalid_exception_list",
    ),
    (
        "exception_bad_lineno",
        batch(_exception_event([{**GOOD_FRAME, "lineno": "12"}])),
        400,
        "invalid_exception_list",
    ),
    (
        "exception_bad_context",
        batch(_exception_event([{**GOOD_FRAME, "pre_context": "x"}])),
        400,
        "invalid_exception_list",
    ),
    (
        "exception_frames_not_list",
        batch(
            event(
                "$exception",
                properties={
                    "$exception_list": [{"type": "E", "value": "", "stacktrace": {"frames": {}}}]
                },
            )
        ),
        400,
        "invalid_exception_list",
    ),
    ("bad_timestamp", batch(event(timestamp="yesterday")), 400, "invalid_timestamp"),
    ("numeric_timestamp", batch(event(timestamp=1700000000)), 400, "invalid_timestamp"),
    ("bad_sent_at", {**batch(event()), "sent_at": "soon"}, 400, "invalid_timestamp"),
    ("bad_uuid", batch(event(uuid="not-a-uuid")), 400, "invalid_uuid"),
    ("empty_batch", batch(), 400, "no_data"),
    ("batch_not_list", {"api_key": KEY, "batch": {"event": "x"}}, 400, "invalid_payload"),
    ("event_not_object", batch("signed_up"), 400, "invalid_payload"),  # type: ignore[arg-type]
    ("neither_event_nor_batch", {"api_key": KEY, "events": []}, 400, "invalid_payload"),
]


@pytest.mark.parametrize(("body", "status", "code"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_invalid_events_are_refused_like_posthog(
    posthog_sink: SinkServer, body: Any, status: int, code: str
) -> None:
    response = post(posthog_sink.url + "/batch/", body)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["type"] == ("authentication_error" if status == 401 else "validation_error")
    assert answer["code"] == code
    assert isinstance(answer["detail"], str) and answer["detail"]
    assert posthog_sink.events() == []
    (rejected,) = posthog_sink.rejected()
    assert rejected["code"] == code
    assert rejected["reason"] == answer["detail"]


@pytest.mark.parametrize(
    ("raw", "headers", "code"),
    [
        (b"{not json", {}, "invalid_payload"),
        (b'{"api_key": "k", "batch": [{"event": "x", "distinct_id": NaN}]}', {}, "invalid_payload"),
        (b"plain bytes", {"Content-Encoding": "gzip"}, "invalid_payload"),
        (b"", {}, "no_data"),
        (b"{}", {"Content-Encoding": "br"}, "invalid_payload"),
    ],
    ids=["not_json", "nan", "bad_gzip", "empty", "unknown_encoding"],
)
def test_unreadable_bodies_are_refused_and_kept(
    posthog_sink: SinkServer, raw: bytes, headers: dict[str, str], code: str
) -> None:
    response = post(posthog_sink.url + "/i/v0/e/", None, raw=raw, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == code
    (rejected,) = posthog_sink.rejected()
    assert rejected["code"] == code
    assert rejected["endpoint"] == "/i/v0/e/"


def test_one_bad_event_fails_the_whole_request(posthog_sink: SinkServer) -> None:
    good, bad = event("good"), event("bad", uuid="nope")
    response = post(posthog_sink.url + "/batch/", batch(good, bad))
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_uuid"
    assert "batch[1]" in response.json()["detail"]
    assert posthog_sink.events() == []
    rows = {row["event"]: row for row in posthog_sink.rejected()}
    assert rows["bad"]["code"] == "invalid_uuid"
    assert rows["good"]["code"] == "batch_rejected"
    assert "invalid_uuid" in rows["good"]["reason"]


def test_what_posthog_accepts_with_a_warning(posthog_sink: SinkServer) -> None:
    events = [
        event("numeric", distinct_id=42),
        event("placeholder", distinct_id="None"),
        event("personless", properties={"$process_person_profile": False, "$set": {"a": 1}}),
        {
            **{k: v for k, v in event("cookieless").items() if k != "distinct_id"},
            "properties": {"$cookieless_mode": True},
        },
        event("long_id", distinct_id="x" * 250),
        event("zulu", timestamp="2026-01-02T03:04:05.123456789Z"),
        event("no_offset", timestamp="2026-01-02 03:04:05"),
        event("future", timestamp="2999-01-01T00:00:00+00:00"),
        {k: v for k, v in event("no_uuid_no_timestamp").items() if k not in ("uuid", "timestamp")},
    ]
    assert post(posthog_sink.url + "/batch/", batch(*events)).status_code == 200
    rows = {row["event"]: row for row in posthog_sink.events()}
    assert rows["numeric"]["distinct_id"] == "42"
    assert "placeholder" in rows["placeholder"]["warnings"][0]
    assert rows["personless"]["warnings"] == [
        "person properties on a personless event are ignored by PostHog"
    ]
    assert rows["cookieless"]["distinct_id"] == "$posthog_cookieless"
    assert len(rows["long_id"]["distinct_id"]) == 200
    assert rows["zulu"]["warnings"] == [] and rows["no_offset"]["warnings"] == []
    assert "future" in rows["future"]["warnings"][0]
    assert rows["no_uuid_no_timestamp"]["uuid"] is None


def test_body_size_caps(posthog_sink: SinkServer) -> None:
    bomb = gzip.compress(b" " * (21 * 1024 * 1024))  # 21 MiB once decompressed
    response = post(
        posthog_sink.url + "/batch/", None, raw=bomb, headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    # a declared length over the cap is refused before reading anything
    with socket.create_connection(("127.0.0.1", posthog_sink.port), timeout=5) as conn:
        conn.sendall(
            b"POST /batch/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 99999999\r\n\r\n"
        )
        head = conn.recv(4096)
    assert head.startswith(b"HTTP/1.1 413")


def test_chunked_bodies_and_cors_preflight(posthog_sink: SinkServer) -> None:
    payload = json.dumps(batch(event("chunked"))).encode()
    response = requests.post(
        posthog_sink.url + "/batch/",
        data=iter([payload[:10], payload[10:]]),  # a generator body is sent chunked
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert posthog_sink.events()[0]["event"] == "chunked"
    preflight = requests.options(posthog_sink.url + "/e/", timeout=10)
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Encoding" in preflight.headers["Access-Control-Allow-Headers"]


def test_unknown_paths_and_methods(posthog_sink: SinkServer) -> None:
    assert post(posthog_sink.url + "/nope/", batch(event())).status_code == 404
    assert requests.get(posthog_sink.url + "/nope", timeout=10).status_code == 404
    assert requests.delete(posthog_sink.url + "/batch/", timeout=10).status_code == 404
    assert requests.get(posthog_sink.url + "/healthz", timeout=10).json()["status"] == "ok"


def test_concurrent_writers_lose_nothing(posthog_sink: SinkServer) -> None:
    threads, requests_each, per_batch = 8, 15, 5
    sent: list[str] = []
    lock = threading.Lock()
    failures: list[str] = []

    def send(worker: int) -> None:
        with requests.Session() as session:
            for i in range(requests_each):
                events = [event(f"w{worker}", distinct_id=f"user-{i}") for _ in range(per_batch)]
                with lock:
                    sent.extend(e["uuid"] for e in events)
                data = gzip.compress(json.dumps(batch(*events)).encode())
                answer = session.post(
                    posthog_sink.url + "/batch/",
                    data=data,
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                    timeout=10,
                )
                if answer.status_code != 200:
                    failures.append(answer.text)

    workers = [threading.Thread(target=send, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert failures == []
    stored = posthog_sink.events(limit=10_000)
    assert len(stored) == threads * requests_each * per_batch
    assert sorted(row["uuid"] for row in stored) == sorted(sent)
    assert len({row["id"] for row in stored}) == len(stored)


def test_a_real_client_delivers_everything_it_builds(posthog_sink: SinkServer) -> None:
    """What our Client sends passes the sink's ingestion rules (nothing rejected)."""
    from opentelemetry.sdk.trace import TracerProvider

    import posthog_otel as posthog

    client = posthog_sink.client(gzip=True)
    tracer = TracerProvider().get_tracer("test")
    with posthog.new_context(), tracer.start_as_current_span("request") as span:
        posthog.identify_context("user-7")
        posthog.set_context_session("session-7")
        posthog.tag("plan", "pro")
        client.capture("checkout_started", properties={"items": 3})
        try:
            {}["missing"]
        except KeyError as exc:
            client.capture_exception(exc)
        client.set(properties={"email": "u7@example.com"})
        client.set_once(properties={"first_seen": "today"})
    client.group_identify("company", "acme", {"name": "Acme"}, distinct_id="user-7")
    client.alias("anon-1", "user-7")
    client.capture("anonymous_ping")
    assert client.flush(10)
    trace_id = format(span.get_span_context().trace_id, "032x")

    assert posthog_sink.rejected() == []
    rows = posthog_sink.events()
    names = [row["event"] for row in rows]
    assert sorted(names) == sorted(
        [
            "checkout_started",
            "$exception",
            "$set",
            "$set_once",
            "$groupidentify",
            "$create_alias",
            "anonymous_ping",
        ]
    )
    by_name = {row["event"]: row for row in rows}
    checkout = by_name["checkout_started"]
    assert checkout["distinct_id"] == "user-7"
    assert checkout["session_id"] == "session-7"
    assert checkout["trace_id"] == trace_id
    assert checkout["properties"]["plan"] == "pro"
    exception = by_name["$exception"]["properties"]["$exception_list"][0]
    assert exception["type"] == "KeyError"
    assert exception["stacktrace"]["frames"][-1]["function"].endswith(
        "test_a_real_client_delivers_everything_it_builds"
    )
    assert by_name["anonymous_ping"]["properties"]["$process_person_profile"] is False
    assert uuid.UUID(by_name["anonymous_ping"]["distinct_id"])
    person = requests.get(
        posthog_sink.url + "/person", params={"distinct_id": "user-7"}, timeout=10
    )
    assert "u7@example.com" in person.text
    client.shutdown(1)
