"""What other people's SDKs send the sink besides the classic capture: OTLP with ``?token=``,
posthog-node's capture v1, posthog-js's flags and remote config, chunked and unlabeled gzip
bodies. Requests are made by hand here; tests/integration/test_peer_clients.py runs the
real SDKs and tests/unit/sink/test_recorded_corpus.py replays what they sent."""

from __future__ import annotations

import gzip
import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import requests

from posthog_otel.sink import SinkServer
from tests.support.sink_helpers import KEY

TRACE = "5b8efff798038103d269b633813fc60c"


def _log_body(message: str) -> dict[str, Any]:
    record = {
        "timeUnixNano": "1718000000000000000",
        "severityNumber": 17,
        "severityText": "ERROR",
        "body": {"stringValue": message},
        "attributes": [{"key": "posthogDistinctId", "value": {"stringValue": "u-log"}}],
    }
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}


def test_otlp_accepts_the_token_in_the_query(posthog_sink: SinkServer) -> None:
    response = requests.post(
        f"{posthog_sink.url}/i/v1/logs?token={KEY}",
        data=gzip.compress(json.dumps(_log_body("card declined")).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    [row] = posthog_sink.events(kind="otlp_log")
    assert row["properties"]["body"] == "card declined"
    assert row["distinct_id"] == "u-log"
    assert row["api_key"] is not None


def test_otlp_without_any_token_names_both_ways(posthog_sink: SinkServer) -> None:
    response = requests.post(
        f"{posthog_sink.url}/i/v1/logs?token=", json=_log_body("x"), timeout=10
    )
    assert response.status_code == 401
    assert "?token=" in response.json()["message"]


def _v1_event(uuid: str, **overrides: Any) -> dict[str, Any]:
    event = {
        "event": "order placed",
        "uuid": uuid,
        "distinct_id": "node-user",
        "timestamp": "2024-06-10T06:13:20.000Z",
        "session_id": "sess-v1",
        "window_id": "win-v1",
        "options": {"process_person_profile": False},
        "properties": {"total": 12},
    }
    event.update(overrides)
    return event


def test_capture_v1_answers_per_event(posthog_sink: SinkServer) -> None:
    good = "01902f6a-0000-7000-8000-000000000001"
    bad = "01902f6a-0000-7000-8000-000000000002"
    body = {
        "created_at": "2024-06-10T06:13:21.000Z",
        "batch": [_v1_event(good), _v1_event(bad, event="")],
    }
    response = requests.post(
        posthog_sink.url + "/i/v1/analytics/events",
        data=gzip.compress(json.dumps(body).encode()),
        headers={
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {KEY}",
        },
        timeout=10,
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[good] == {"result": "ok"}
    assert results[bad]["result"] == "drop" and "event" in results[bad]["details"]
    [row] = posthog_sink.events(event="order placed")
    assert row["distinct_id"] == "node-user"
    assert row["session_id"] == "sess-v1"
    assert row["properties"]["$window_id"] == "win-v1"
    assert row["properties"]["$process_person_profile"] is False
    assert [r["uuid"] for r in posthog_sink.rejected()] == [bad]


def test_capture_v1_needs_a_bearer_token(posthog_sink: SinkServer) -> None:
    response = requests.post(
        posthog_sink.url + "/i/v1/analytics/events",
        json={"batch": [_v1_event("01902f6a-0000-7000-8000-000000000003")]},
        timeout=10,
    )
    assert response.status_code == 401
    assert posthog_sink.events() == []


def test_flags_and_remote_config_answer_empty_with_cors(posthog_sink: SinkServer) -> None:
    origin = {"Origin": "http://shop.example"}
    flags = requests.post(
        posthog_sink.url + "/flags/?v=2&config=true",
        data=json.dumps({"token": KEY, "distinct_id": "u"}),
        headers={**origin, "Content-Type": "text/plain"},
        timeout=10,
    )
    assert flags.status_code == 200
    assert flags.headers["Access-Control-Allow-Origin"] == "*"
    assert flags.json()["flags"] == {} and flags.json()["featureFlags"] == {}

    config = requests.get(f"{posthog_sink.url}/array/{KEY}/config", headers=origin, timeout=10)
    assert config.status_code == 200 and config.headers["Access-Control-Allow-Origin"] == "*"
    assert config.json()["token"] == KEY and config.json()["sessionRecording"] is False

    script = requests.get(f"{posthog_sink.url}/array/{KEY}/config.js", headers=origin, timeout=10)
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("application/javascript")
    assert f'_POSTHOG_REMOTE_CONFIG["{KEY}"]' in script.text

    preflight = requests.options(
        posthog_sink.url + "/flags/",
        headers={**origin, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert requests.get(posthog_sink.url + "/array/a b/config", timeout=10).status_code == 404


def test_chunked_gzip_otlp_body(posthog_sink: SinkServer) -> None:
    """Node's OTLP exporters stream gzip bodies with Transfer-Encoding: chunked."""
    data = gzip.compress(json.dumps(_log_body("chunked")).encode())
    url = urlsplit(posthog_sink.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
    connection.request(
        "POST",
        "/i/v1/logs",
        body=iter(pieces),
        headers={
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {KEY}",
        },
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 200, response.read()
    connection.close()
    [row] = posthog_sink.events(kind="otlp_log")
    assert row["properties"]["body"] == "chunked"


def test_posthog_js_gzip_sent_as_text_plain_without_compression_parameter(
    posthog_sink: SinkServer,
) -> None:
    event = {"event": "$pageview", "distinct_id": "browser-1", "properties": {"token": KEY}}
    response = requests.post(
        posthog_sink.url + "/e/?ip=0&_=1718000000000&ver=1.449.2",
        data=gzip.compress(json.dumps([event]).encode()),
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert posthog_sink.events(event="$pageview")[0]["distinct_id"] == "browser-1"
