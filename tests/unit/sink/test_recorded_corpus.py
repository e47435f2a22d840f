"""Replay request bodies recorded from real SDKs (tests/corpus/, made by
tests/integration/test_peer_clients.py and tests/integration/test_posthog_js_browser.py with
POSTHOG_OTEL_RECORD_CORPUS=1) into the sink and the bridge, without Node.js or a browser: what
those SDKs really send keeps working."""

from __future__ import annotations

import base64
import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from posthog_otel.bridge.pipeline import Pipeline
from posthog_otel.bridge.settings import BridgeSettings
from posthog_otel.sink import SinkServer
from posthog_otel.sink.ingest import gunzip_capped
from posthog_otel.testing import memory_client

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
ENTRIES = sorted(CORPUS.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(path.read_text())
    entry["body"] = base64.b64decode(entry["body_base64"])
    return entry


def _replay(sink: SinkServer, entry: dict[str, Any]) -> int:
    url = urlsplit(sink.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    headers = {k: v for k, v in entry["headers"].items() if k != "transfer-encoding"}
    chunked = entry["headers"].get("transfer-encoding") == "chunked"
    body = entry["body"]
    if chunked:  # as sent: a stream of chunks
        pieces = [body[i : i + 1000] for i in range(0, len(body), 1000)]
        connection.request(
            entry["method"], entry["path"], body=iter(pieces), headers=headers, encode_chunked=True
        )
    else:
        connection.request(entry["method"], entry["path"], body=body, headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_corpus_covers_every_peer() -> None:
    sdks = {_load(path)["sdk"] for path in ENTRIES}
    assert {"node-otel-protobuf", "node-otel-json", "posthog-node-v0", "posthog-node-v1"} <= sdks
    assert {"posthog-python", "posthog-js"} <= sdks
    assert any(_load(p)["headers"].get("transfer-encoding") == "chunked" for p in ENTRIES)


@pytest.mark.parametrize("path", ENTRIES, ids=[p.stem for p in ENTRIES])
def test_replayed_into_the_sink(posthog_sink: SinkServer, path: Path) -> None:
    entry = _load(path)
    assert _replay(posthog_sink, entry) == entry["status"] == 200
    rows = posthog_sink.events()
    assert rows, "nothing stored"
    sdk = entry["sdk"]
    if sdk.startswith("node-otel"):
        assert {r["distinct_id"] for r in rows if r["distinct_id"]} == {"node-user-1"}
        assert {r["trace_id"] for r in rows} and all(r["kind"] == "otlp_span" for r in rows)
    elif entry["path"].startswith("/i/v1/logs"):
        [row] = rows
        assert row["properties"]["body"] == "card declined"
    elif sdk == "posthog-js":  # gzip sent as text/plain, no compression= in the query
        assert entry["headers"]["content-type"] == "text/plain"
        assert entry["body"][:2] == b"\x1f\x8b" and "compression=" not in entry["path"]
        [row] = rows
        assert row["event"] in {"$pageview", "$identify", "cart_viewed"}
        assert row["session_id"] and row["session_id"] == row["properties"]["$session_id"]
        assert row["properties"]["$window_id"] and row["properties"]["$lib"] == "web"
        if row["event"] != "$pageview":
            assert row["distinct_id"] == "browser-user-1"
    elif sdk.startswith("posthog-node"):
        [row] = rows
        assert (row["event"], row["distinct_id"], row["session_id"]) == (
            "invoice paid",
            "node-user-2",
            "node-session-2",
        )
    else:
        [row] = rows
        assert (row["event"], row["distinct_id"]) == ("report exported", "py-user")


@pytest.mark.parametrize("sdk", ["node-otel-protobuf", "node-otel-json"])
def test_recorded_node_traces_through_the_bridge(sdk: str) -> None:
    [entry] = [e for e in map(_load, ENTRIES) if e["sdk"] == sdk]
    body = gunzip_capped(entry["body"])
    client, events = memory_client()
    outcome = Pipeline(BridgeSettings.build(api_key="phc_replay", environ={})).process(
        "traces", body, entry["headers"]["content-type"], client
    )
    assert outcome.status == 200
    client.flush(5)
    [exception] = [e for e in events if e["event"] == "$exception"]
    assert exception["distinct_id"] == "node-user-1"
    assert exception["properties"]["$session_id"] == "node-session-1"
    [item] = exception["properties"]["$exception_list"]
    assert item["mechanism"]["handled"] is False
    assert item["stacktrace"]["frames"][-1]["function"] == "JSON.parse"
