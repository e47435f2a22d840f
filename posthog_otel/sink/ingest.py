"""Turn a request to a capture endpoint (``/batch/``, ``/capture/``, ``/e/``, ``/i/v0/e/``) into
an answer and the records to store.

Bodies may be gzip (``Content-Encoding: gzip``, ``?compression=gzip-js`` as posthog-js sends,
or simply gzip bytes), JSON, or a form with a ``data=`` field (base64 or plain JSON) as older
browser SDKs send. The JSON may be a batch ``{"api_key", "batch": [...]}``, one event
``{"api_key", "event", "distinct_id", ...}``, or a list of events.

As PostHog does, one invalid event fails the whole request: the answer is the first problem
(``400 {"type": "validation_error", "code", "detail", "attr"}``, or 401 without a project key)
and nothing of that request is ingested. The sink still stores every event of it, marked
rejected with its own reason, so the viewer shows what was lost and why.

Usage::

    answer = ingest_capture(body, endpoint="/batch/", headers={"content-encoding": "gzip"},
                            query={}, now=time.time())
    store.insert(answer.records)
    respond(answer.status, answer.body)
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from .records import KIND_EVENT, Record
from .validation import SESSION_PROPERTY, Rejection, parse_timestamp, token_of, validate_event

__all__ = ["MAX_BODY_BYTES", "Answer", "gunzip_capped", "ingest_capture"]

MAX_BODY_BYTES = 20 * 1024 * 1024
_RAW_SNIPPET = 4096
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Answer:
    """What to answer (status and JSON body) and what to store."""

    status: int
    body: dict[str, Any]
    records: list[Record] = field(default_factory=list)


def gunzip_capped(data: bytes, cap: int = MAX_BODY_BYTES) -> bytes:
    """Decompress gzip ``data``; :class:`Rejection` when corrupt or larger than ``cap``."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, cap + 1)
    except zlib.error as exc:
        raise Rejection("invalid_payload", f"body is not valid gzip: {exc}") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise Rejection(
            "payload_too_large", f"body is over {cap} bytes once decompressed", status=413
        )
    return out


def ingest_capture(
    raw: bytes,
    *,
    endpoint: str,
    headers: Mapping[str, str],
    query: Mapping[str, list[str]],
    now: float,
) -> Answer:
    """Decode, validate and describe one capture request. Never raises for bad input.

    ``headers`` are the request headers with lower-case names.
    """
    try:
        payload = _payload(raw, headers, query)
    except Rejection as problem:
        return Answer(problem.status, problem.answer(), [_unreadable(raw, endpoint, problem)])
    try:
        events, body_token, is_batch = _events_of(payload)
    except Rejection as problem:
        return Answer(problem.status, problem.answer(), [_whole(payload, endpoint, problem)])

    records: list[Record] = []
    first: Rejection | None = None
    for index, event in enumerate(events):
        try:
            record = validate_event(
                event,
                endpoint=endpoint,
                body_token=body_token,
                now=now,
                index=index if is_batch else None,
            )
        except Rejection as problem:
            first = first or problem
            record = _salvage(event, endpoint, body_token, now, problem)
        records.append(record)
    if first is not None:
        for record in records:
            record.reject(
                "batch_rejected",
                f"valid, but not ingested: another event of the request was refused "
                f"({first.code}: {first.detail})",
            )
        return Answer(first.status, first.answer(), records)
    return Answer(200, {"status": "Ok"}, records)


# --------------------------------------------------------------------------- decoding


def _payload(raw: bytes, headers: Mapping[str, str], query: Mapping[str, list[str]]) -> Any:
    if len(raw) > MAX_BODY_BYTES:
        raise Rejection("payload_too_large", f"body is over {MAX_BODY_BYTES} bytes", status=413)
    if not raw:
        raise Rejection("no_data", "the request body is empty")
    encoding = (headers.get("content-encoding") or "").strip().lower()
    compression = (query.get("compression") or [""])[0].lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise Rejection("invalid_payload", f"unsupported Content-Encoding {encoding!r}")
    data = raw
    if encoding in ("gzip", "x-gzip") or compression.startswith("gzip") or raw[:2] == _GZIP_MAGIC:
        data = gunzip_capped(raw)
    content_type = (headers.get("content-type") or "").lower()
    looks_json = data.lstrip()[:1] in (b"{", b"[")
    if data[:5] == b"data=" or ("x-www-form-urlencoded" in content_type and not looks_json):
        data = _form_data(data)
    try:
        payload = json.loads(data, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Rejection("invalid_payload", f"body is not valid JSON: {exc}") from None
    if b"\\u" in data:  # escapes may decode to lone surrogates, which are not text
        try:
            json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise Rejection(
                "invalid_payload", "body contains an unpaired surrogate escape"
            ) from None
    return payload


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _form_data(data: bytes) -> bytes:
    try:
        form = parse_qs(data.decode("utf-8"), strict_parsing=False)
    except UnicodeDecodeError:
        raise Rejection("invalid_payload", "form body is not UTF-8") from None
    values = form.get("data")
    if not values:
        raise Rejection("invalid_payload", "body is neither JSON nor a form with a data= field")
    text = values[0].strip()
    compression = (form.get("compression") or [""])[0].lower()
    if compression and compression not in ("base64",):
        raise Rejection("invalid_payload", f"unsupported form compression {compression!r}")
    if text[:1] in ("{", "["):
        return text.encode("utf-8")
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=False)
    except (binascii.Error, ValueError):
        raise Rejection("invalid_payload", "form data is neither JSON nor base64") from None
    return gunzip_capped(decoded) if decoded[:2] == _GZIP_MAGIC else decoded


def _events_of(payload: Any) -> tuple[list[Any], str | None, bool]:
    """(events, the body's token, whether it was a batch)."""
    if isinstance(payload, list):
        if not payload:
            raise Rejection("no_data", "the request holds no event", attr="batch")
        return payload, None, True
    if not isinstance(payload, dict):
        raise Rejection("invalid_payload", "body must be a JSON object or a list of events")
    if "batch" in payload:
        batch = payload["batch"]
        if not isinstance(batch, list):
            raise Rejection("invalid_payload", "batch must be a list of events", attr="batch")
        if not batch:
            raise Rejection("no_data", "the batch holds no event", attr="batch")
        if payload.get("sent_at") is not None:
            _check_sent_at(payload["sent_at"])
        return batch, token_of(payload), True
    if "event" in payload:
        return [payload], token_of(payload), False
    if "data" in payload and isinstance(payload["data"], list | dict):
        return _events_of(payload["data"])
    raise Rejection(
        "invalid_payload",
        'body is neither an event ({"event": ...}) nor a batch ({"batch": [...]})',
    )


def _check_sent_at(value: Any) -> None:
    if not isinstance(value, str):
        raise Rejection("invalid_timestamp", "sent_at must be ISO-8601 text", attr="sent_at")
    try:
        parse_timestamp(value)
    except (ValueError, OverflowError):
        raise Rejection(
            "invalid_timestamp", f"sent_at {value[:80]!r} is not ISO-8601", attr="sent_at"
        ) from None


# --------------------------------------------------------------------------- rejected records


def _unreadable(raw: bytes, endpoint: str, problem: Rejection) -> Record:
    snippet = raw[:_RAW_SNIPPET].decode("utf-8", errors="replace")
    record = Record(kind=KIND_EVENT, endpoint=endpoint, raw={"body": snippet, "bytes": len(raw)})
    record.reject(problem.code, problem.detail)
    return record


def _whole(payload: Any, endpoint: str, problem: Rejection) -> Record:
    record = Record(kind=KIND_EVENT, endpoint=endpoint, raw=_clip(payload))
    record.api_key = token_of(payload)
    record.reject(problem.code, problem.detail)
    return record


def _salvage(
    event: Any, endpoint: str, body_token: str | None, now: float, problem: Rejection
) -> Record:
    """A rejected event described as far as its fields allow, for the viewer."""
    record = Record(kind=KIND_EVENT, endpoint=endpoint, raw=_clip(event), ts=now)
    record.reject(problem.code, problem.detail)
    if not isinstance(event, dict):
        return record
    properties = event.get("properties")
    if isinstance(properties, dict):
        record.properties = properties
        record.session_id = _short(properties.get(SESSION_PROPERTY))
        record.trace_id = _short(properties.get("$trace_id"))
    record.api_key = token_of(event) or body_token
    record.event = _short(event.get("event"))
    distinct_id = event.get("distinct_id")
    if isinstance(distinct_id, str | int | float) and not isinstance(distinct_id, bool):
        record.distinct_id = _short(str(distinct_id))
    record.uuid = _short(event.get("uuid"))
    record.timestamp = _short(event.get("timestamp"))
    return record


def _short(value: Any) -> str | None:
    return value[:1000] if isinstance(value, str) and value else None


def _clip(value: Any) -> Any:
    """Keep what the sender sent, unless it is huge (then a text snippet of it)."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return {"body": repr(value)[:_RAW_SNIPPET]}
    if len(text) <= 1024 * 1024:
        return value
    return {"body": text[:_RAW_SNIPPET], "clipped": True, "chars": len(text)}
