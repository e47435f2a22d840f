"""A loopback PostHog that answers feature-flag requests as well as capture.

It speaks what posthog-python sends and reads (its ``request.py`` and ``types.py``):

- ``POST /flags/?v=N`` (N >= 4: records carry a typed ``value``) with a JSON body (``api_key``, ``distinct_id``, ``groups``,
  ``person_properties``, ``group_properties``, ``geoip_disable``, ``device_id``,
  ``flag_keys_to_evaluate``) answered with ``{"flags": {key: {"key", "enabled", "variant",
  "reason": {"code", "condition_index", "description"}, "metadata": {"id", "version",
  "payload", "description"}}}, "errorsWhileComputingFlags", "requestId", "evaluatedAt"}``;
- ``GET /flags/definitions?token=...`` and ``GET /api/feature_flag/local_evaluation?token=...``
  (local evaluation; ``Authorization: Bearer <personal key>``) answered with
  ``{"flags": [definition...], "group_type_mapping": {}, "cohorts": {}}``;
- ``POST /batch/`` (and any other POST) with events, recorded like
  :class:`posthog_otel.testing.capture_server.CaptureServer` records them (``requests``,
  each with ``.path`` and ``.body``), so the parity harness can read either server.

Flags are :class:`Flag` rows: enabled for everyone, or only for some distinct ids.

    with FlagsServer([Flag("beta", variant="b", payload={"x": 1})]) as server:
        client = posthog_otel.Client("phc_test", host=server.url, sync_mode=True)
        client.get_feature_flag("beta", "u1")      # "b"
        server.flag_requests[0].body["distinct_id"]  # "u1"
"""

from __future__ import annotations

import gzip
import json
import threading
import uuid as uuid_module
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Flag", "FlagsServer", "Request"]


@dataclass
class Flag:
    """One flag: its value for the distinct ids it matches, and what PostHog says about it."""

    key: str
    variant: str | None = None  # None: a boolean flag
    payload: Any = None  # sent JSON-encoded, as PostHog does
    only_for: frozenset[str] | None = None  # None: everyone
    id: int = 1
    version: int = 1
    has_experiment: bool | None = None
    # an experiment split (config version 2 record): the rule's uuid; the variant is assigned
    experiment_rule: str | None = None

    def matches(self, distinct_id: Any) -> bool:
        return self.only_for is None or str(distinct_id) in self.only_for

    def remote(self, distinct_id: Any, version: int = 4) -> dict[str, Any]:
        """The flag's ``/flags`` record for ``distinct_id`` (``version`` 4 adds a typed
        ``value``: the variant, or True/False)."""
        enabled = self.matches(distinct_id)
        metadata: dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "payload": json.dumps(self.payload) if enabled and self.payload is not None else None,
            "description": "",
        }
        if self.has_experiment is not None:
            metadata["has_experiment"] = self.has_experiment
        if self.experiment_rule is not None and enabled:
            metadata.update(
                config_version=2,
                rule_type="experiment",
                rule_id=self.experiment_rule,
                variant_key=self.variant,
            )
        reason = (
            {
                "code": "condition_match",
                "condition_index": 0,
                "description": "Matched condition set 1",
            }
            if enabled
            else {
                "code": "no_condition_match",
                "condition_index": None,
                "description": "No matching condition set",
            }
        )
        if self.experiment_rule is not None and enabled:
            reason = {"code": "experiment_split", "condition_index": 0, "description": "Experiment"}
        record = {
            "key": self.key,
            "enabled": enabled,
            "variant": self.variant if enabled else None,
            "reason": reason,
            "metadata": metadata,
        }
        if version >= 4:
            record["value"] = (self.variant or True) if enabled else False
        return record

    def definition(self) -> dict[str, Any]:
        """The flag's local-evaluation definition (a ``distinct_id`` condition, 100% rollout)."""
        properties = []
        if self.only_for is not None:
            properties.append(
                {
                    "key": "distinct_id",
                    "operator": "exact",
                    "value": sorted(self.only_for),
                    "type": "person",
                }
            )
        filters: dict[str, Any] = {
            "groups": [
                {"properties": properties, "rollout_percentage": 100, "variant": self.variant}
            ],
            "payloads": {},
        }
        if self.variant is not None:
            filters["multivariate"] = {
                "variants": [{"key": self.variant, "rollout_percentage": 100}]
            }
        if self.payload is not None:
            filters["payloads"][self.variant or "true"] = json.dumps(self.payload)
        return {
            "id": self.id,
            "name": self.key,
            "key": self.key,
            "active": True,
            "version": self.version,
            "filters": filters,
            "ensure_experience_continuity": False,
        }


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any
    method: str = "POST"
    query: dict[str, list[str]] = field(default_factory=dict)


class FlagsServer:
    """Answers ``/flags`` and the local-evaluation endpoints; records events posted to it."""

    def __init__(
        self,
        flags: Iterable[Flag] = (),
        *,
        personal_api_key: str | None = None,
        quota_limited: bool = False,
        minimal_flag_called_events: bool = False,
        flags_status: int = 200,
    ) -> None:
        self.flags = list(flags)
        self.personal_api_key = personal_api_key
        self.quota_limited = quota_limited
        self.minimal_flag_called_events = minimal_flag_called_events
        self.flags_status = flags_status  # not 200: /flags fails with {"detail": ...}
        self.requests: list[Request] = []  # event posts (the CaptureServer interface)
        self.flag_requests: list[Request] = []  # /flags posts
        self.definition_requests: list[Request] = []  # local-evaluation GETs
        self._lock = threading.Condition()
        self._answered = 0  # request ids count up, so two servers answer alike
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                record = Request(
                    url.path, dict(self.headers.items()), None, "GET", parse_qs(url.query)
                )
                if url.path.rstrip("/") not in (
                    "/flags/definitions",
                    "/api/feature_flag/local_evaluation",
                ):
                    self._answer(404, {"detail": "not found"})
                    return
                with server._lock:
                    server.definition_requests.append(record)
                    server._lock.notify_all()
                expected = f"Bearer {server.personal_api_key}"
                if server.personal_api_key is None or self.headers.get("Authorization") != expected:
                    self._answer(401, {"detail": "invalid personal API key"})
                    return
                self._answer(
                    200,
                    {
                        "flags": [flag.definition() for flag in server.flags],
                        "group_type_mapping": {},
                        "cohorts": {},
                    },
                )

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                body = json.loads(raw) if raw else None
                record = Request(
                    url.path, dict(self.headers.items()), body, "POST", parse_qs(url.query)
                )
                if url.path.rstrip("/") == "/flags":
                    with server._lock:
                        server.flag_requests.append(record)
                        server._lock.notify_all()
                    version = int((record.query.get("v") or ["1"])[0] or 1)
                    request = body if isinstance(body, dict) else {}
                    if server.flags_status != 200:
                        self._answer(server.flags_status, {"detail": "flags unavailable"})
                        return
                    self._answer(200, server.flags_response(request, version))
                    return
                with server._lock:
                    server.requests.append(record)
                    server._lock.notify_all()
                self._answer(200, {"status": "Ok"})

            def _answer(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _next_request(self) -> int:
        with self._lock:
            self._answered += 1
            return self._answered

    def flags_response(self, body: dict[str, Any], version: int = 4) -> dict[str, Any]:
        """The ``/flags?v=<version>`` answer for one request body."""
        wanted = body.get("flag_keys_to_evaluate")
        distinct_id = body.get("distinct_id")
        records = {
            flag.key: flag.remote(distinct_id, version)
            for flag in self.flags
            if not wanted or flag.key in wanted
        }
        answer: dict[str, Any] = {
            "flags": records,
            "errorsWhileComputingFlags": False,
            "requestId": str(uuid_module.UUID(int=self._next_request())),
            "evaluatedAt": 1_700_000_000_000,
        }
        if self.minimal_flag_called_events:
            answer["minimalFlagCalledEvents"] = True
        if self.quota_limited:
            answer = {"flags": {}, "quotaLimited": ["feature_flags"]}
        return answer

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            bodies = [r.body for r in self.requests if isinstance(r.body, dict)]
        return [event for body in bodies for event in body.get("batch", [])]

    def __enter__(self) -> FlagsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
