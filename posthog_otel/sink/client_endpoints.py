"""Endpoints PostHog's own SDKs call besides capture, answered the way PostHog answers them.

* ``POST /i/v1/analytics/events``: posthog-node's capture with ``POSTHOG_CAPTURE_MODE=v1``.
  The body (JSON, ``Content-Encoding: gzip`` allowed) is ``{"created_at", "batch": [...]}``,
  each event ``{"event", "uuid", "distinct_id", "timestamp", "session_id"?, "window_id"?,
  "options": {...}, "properties": {...}}``; the project token comes as
  ``Authorization: Bearer <token>``. Unlike the classic endpoints each event is judged on its
  own: the answer is 200 ``{"results": {"<uuid>": {"result": "ok"}}}``, a refused event being
  ``{"result": "drop", "details": "<why>"}`` (the sender does not retry it). 401 without a
  token, 400 for a body that is not such a batch.
* ``POST /flags/?v=2`` (also ``/flags``, ``/decide``): posthog-js's feature flags. The sink has
  no flags: ``{"flags": {}, "featureFlags": {}, "featureFlagPayloads": {}, ...}``.
* ``GET /array/<token>/config``: posthog-js's remote config, as JSON; ``GET
  /array/<token>/config.js``: the same as a script that sets
  ``window._POSTHOG_REMOTE_CONFIG[<token>]``. Both describe no extra feature (no recordings,
  surveys, site apps or flags), so the SDK runs with its local settings.

All of them answer with ``Access-Control-Allow-Origin: *`` (the handler adds it), as
browsers need for a page on another origin.

Usage::

    answer = capture_v1(body, headers=lower_case_headers, now=time.time())
    store.insert(answer.records)
    respond(answer.status, answer.body)
    respond(200, flags_answer())
    respond(200, remote_config("phc_..."))
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .ingest import MAX_BODY_BYTES, gunzip_capped
from .otlp import bearer_token
from .records import KIND_EVENT, Record
from .validation import Rejection, validate_event

__all__ = [
    "CAPTURE_V1_PATH",
    "V1Answer",
    "capture_v1",
    "config_token",
    "flags_answer",
    "remote_config",
    "remote_config_script",
]

CAPTURE_V1_PATH = "/i/v1/analytics/events"
_CONFIG_PATH = re.compile(r"^/array/(?P<token>[A-Za-z0-9_\-]{1,200})/config(?P<js>\.js)?$")
# v1 "options" -> the classic property that carries the same instruction
_OPTION_PROPERTIES = {
    "process_person_profile": "$process_person_profile",
    "cookieless_mode": "$cookieless_mode",
    "disable_skew_correction": "$ignore_sent_at",
    "product_tour_id": "$product_tour_id",
}


@dataclass
class V1Answer:
    status: int
    body: dict[str, Any]
    records: list[Record] = field(default_factory=list)


def capture_v1(raw: bytes, *, headers: Mapping[str, str], now: float) -> V1Answer:
    """Judge one capture-v1 request, event by event. Never raises for bad input."""
    token = bearer_token(headers.get("authorization"))
    if token is None:
        detail = "missing project token: send Authorization: Bearer <project API key>"
        return V1Answer(401, _problem("missing_api_key", detail))
    try:
        batch = _batch(raw, headers)
    except Rejection as problem:
        record = Record(kind=KIND_EVENT, endpoint=CAPTURE_V1_PATH, api_key=token, ts=now)
        record.raw = {"body": raw[:4096].decode("utf-8", errors="replace"), "bytes": len(raw)}
        record.reject(problem.code, problem.detail)
        return V1Answer(problem.status, problem.answer(), [record])
    results: dict[str, dict[str, str]] = {}
    records: list[Record] = []
    for index, event in enumerate(batch):
        classic = _classic(event, token)
        key = str(classic.get("uuid") or f"batch[{index}]")
        try:
            record = validate_event(
                classic, endpoint=CAPTURE_V1_PATH, body_token=token, now=now, index=index
            )
            results[key] = {"result": "ok"}
        except Rejection as problem:
            record = _refused(classic, token, now, problem)
            results[key] = {"result": "drop", "details": f"{problem.code}: {problem.detail}"}
        records.append(record)
    return V1Answer(200, {"results": results}, records)


def flags_answer() -> dict[str, Any]:
    """``/flags/?v=2`` with no flags, in both the v2 and the older field names."""
    return {
        "flags": {},
        "featureFlags": {},
        "featureFlagPayloads": {},
        "errorsWhileComputingFlags": False,
        "quotaLimited": [],
        "requestId": str(uuid.uuid4()),
    }


def config_token(path: str) -> tuple[str, bool] | None:
    """``(token, as_script)`` for ``/array/<token>/config(.js)``, else None."""
    found = _CONFIG_PATH.match(path)
    return None if found is None else (found["token"], bool(found["js"]))


def remote_config(token: str) -> dict[str, Any]:
    """The remote config of a project with nothing switched on."""
    return {
        "token": token,
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": False,
        "captureDeadClicks": False,
        "capturePerformance": False,
        "autocapture_opt_out": False,
        "autocaptureExceptions": False,
        "analytics": {"endpoint": "/i/v0/e/"},
        "elementsChainAsString": True,
        "sessionRecording": False,
        "heatmaps": False,
        "surveys": False,
        "defaultIdentifiedOnly": True,
        "siteApps": [],
    }


def remote_config_script(token: str) -> str:
    """``config.js``: the same config, handed to posthog-js through a global."""
    payload = json.dumps({"config": remote_config(token), "siteApps": []})
    key = json.dumps(token)
    return (
        "(function(){window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};"
        f"window._POSTHOG_REMOTE_CONFIG[{key}]={payload};}})();\n"
    )


# --------------------------------------------------------------------------- helpers


def _batch(raw: bytes, headers: Mapping[str, str]) -> list[Any]:
    if len(raw) > MAX_BODY_BYTES:
        raise Rejection("payload_too_large", f"body is over {MAX_BODY_BYTES} bytes", status=413)
    encoding = (headers.get("content-encoding") or "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        raw = gunzip_capped(raw)
    elif encoding not in ("", "identity"):
        raise Rejection("invalid_payload", f"unsupported Content-Encoding {encoding!r}")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Rejection("invalid_payload", f"body is not valid JSON: {exc}") from None
    batch = payload.get("batch") if isinstance(payload, dict) else None
    if not isinstance(batch, list):
        raise Rejection("invalid_payload", 'body must be {"batch": [...]}', attr="batch")
    if not batch:
        raise Rejection("no_data", "the batch holds no event", attr="batch")
    return batch


def _classic(event: Any, token: str) -> Any:
    """A v1 event in the classic shape :func:`validate_event` reads."""
    if not isinstance(event, dict):
        return event
    properties = event.get("properties")
    classic = {key: value for key, value in event.items() if key not in ("options",)}
    if isinstance(properties, dict):
        properties = dict(properties)
        for field_name, prop in (("session_id", "$session_id"), ("window_id", "$window_id")):
            if isinstance(event.get(field_name), str):
                properties.setdefault(prop, event[field_name])
        options = event.get("options")
        if isinstance(options, dict):
            for option, prop in _OPTION_PROPERTIES.items():
                if option in options:
                    properties.setdefault(prop, options[option])
        classic["properties"] = properties
    classic.pop("session_id", None)
    classic.pop("window_id", None)
    classic["api_key"] = token
    return classic


def _refused(event: Any, token: str, now: float, problem: Rejection) -> Record:
    record = Record(kind=KIND_EVENT, endpoint=CAPTURE_V1_PATH, api_key=token, raw=event, ts=now)
    if isinstance(event, dict):
        for name in ("event", "distinct_id", "uuid", "timestamp"):
            value = event.get(name)
            if isinstance(value, str) and value:
                setattr(record, name, value[:1000])
        properties = event.get("properties")
        if isinstance(properties, dict):
            record.properties = properties
    record.reject(problem.code, problem.detail)
    return record


def _problem(code: str, detail: str) -> dict[str, Any]:
    return {"type": "authentication_error", "code": code, "detail": detail, "attr": None}
