"""SQLite storage for the sink: one table of received items, safe with concurrent writers.

The database runs in WAL mode, so readers (the viewer) never block writers. Inside a process,
connections come from a small pool (one connection is used by one thread at a time) and writes
are serialised by a lock; across processes (two sinks on one file) ``BEGIN IMMEDIATE`` and a
busy timeout make writers queue instead of failing.

Usage::

    store = EventStore("posthog-sink.sqlite3")
    store.insert([record, ...])
    rows = store.query(EventFilter(event="signed_up", limit=20))   # newest first
    rows = store.query(EventFilter(trace_id=trace, order=ORDER_TIME))  # by event time
    store.clear()
    store.close()
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .records import STATUS_ACCEPTED, Record, StoredEvent

__all__ = [
    "ORDER_ARRIVAL",
    "ORDER_TIME",
    "EventFilter",
    "EventStore",
    "PersonSummary",
    "SchemaError",
]

ORDER_ARRIVAL = "arrival"
ORDER_TIME = "time"
_ORDER_BY = {ORDER_ARRIVAL: "id DESC", ORDER_TIME: "ts DESC, id DESC"}

_SCHEMA_VERSION = 1
_BUSY_TIMEOUT_MS = 30_000
_POOL_SIZE = 8

_COLUMNS = (
    "received_at",
    "kind",
    "endpoint",
    "status",
    "code",
    "reason",
    "api_key",
    "uuid",
    "event",
    "distinct_id",
    "session_id",
    "trace_id",
    "span_id",
    "timestamp",
    "ts",
    "properties",
    "raw",
    "warnings",
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{name} {'REAL' if name in ('received_at', 'ts') else 'TEXT'}" for name in _COLUMNS)}
);
CREATE INDEX IF NOT EXISTS events_event ON events (event);
CREATE INDEX IF NOT EXISTS events_distinct_id ON events (distinct_id);
CREATE INDEX IF NOT EXISTS events_session_id ON events (session_id);
CREATE INDEX IF NOT EXISTS events_trace_id ON events (trace_id);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
"""


class SchemaError(RuntimeError):
    """The database file was made by an incompatible version of the sink (or is not ours)."""


@dataclass(frozen=True)
class EventFilter:
    """Exact-match filters; None (or empty) means "any". ``limit`` caps the rows returned;
    ``order`` is newest arrival first (``ORDER_ARRIVAL``) or newest event time first
    (``ORDER_TIME``, what the viewer shows)."""

    event: str | None = None
    distinct_id: str | None = None
    session_id: str | None = None
    trace_id: str | None = None
    kind: str | None = None
    status: str | None = None
    after_id: int | None = None
    limit: int = 100
    order: str = ORDER_ARRIVAL

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        for name in ("event", "distinct_id", "session_id", "kind", "status"):
            value = getattr(self, name)
            if value:
                clauses.append(f"{name} = ?")
                args.append(value)
        if self.trace_id:
            clauses.append("trace_id = ?")
            args.append(self.trace_id.strip().lower())
        if self.after_id is not None:
            clauses.append("id > ?")
            args.append(self.after_id)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


@dataclass(frozen=True)
class PersonSummary:
    distinct_id: str
    count: int
    first_seen: float | None
    last_seen: float | None
    sessions: list[str]
    person_properties: dict[str, Any]


class EventStore:
    """The sink's SQLite database. Thread-safe; several processes may share one file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self._pool: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        with self._connection() as conn:
            self._prepare(conn)

    # -- connections ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise RuntimeError("the event store is closed")
        with self._pool_lock:
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        finally:
            with self._pool_lock:
                keep = not self._closed and len(self._pool) < _POOL_SIZE
                if keep:
                    self._pool.append(conn)
            if not keep:
                conn.close()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        with self._write_lock:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SchemaError(f"could not switch {self.path} to WAL mode (got {mode})")
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = {
                    row[0]
                    for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                }
                foreign = version == 0 and bool(tables - {"sqlite_sequence"})
                if version not in (0, _SCHEMA_VERSION) or foreign:
                    raise SchemaError(
                        f"{self.path} is not a posthog-otel sink database of this version; "
                        "use another --db file"
                    )
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close every pooled connection; later calls raise RuntimeError."""
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, []
        for conn in pool:
            conn.close()

    # -- writes ---------------------------------------------------------------------------

    def insert(self, records: Sequence[Record], received_at: float | None = None) -> list[int]:
        """Store ``records`` in one transaction; returns their row ids in order."""
        if not records:
            return []
        now = time.time() if received_at is None else received_at
        rows = [_row(record, now) for record in records]
        placeholders = ", ".join("?" for _ in _COLUMNS)
        sql = f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
        ids: list[int] = []
        with self._connection() as conn, self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    cursor = conn.execute(sql, row)
                    ids.append(int(cursor.lastrowid or 0))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return ids

    def clear(self) -> int:
        """Delete everything; returns how many rows were deleted."""
        with self._connection() as conn, self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                deleted = conn.execute("DELETE FROM events").rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return int(deleted)

    # -- reads ----------------------------------------------------------------------------

    def query(self, where: EventFilter | None = None) -> list[StoredEvent]:
        """Matching rows, newest first (by arrival or by event time, as ``where.order`` says)."""
        where = where or EventFilter()
        clause, args = where.where()
        limit = max(1, min(int(where.limit), 10_000))
        order = _ORDER_BY.get(where.order, _ORDER_BY[ORDER_ARRIVAL])
        sql = f"SELECT id, {', '.join(_COLUMNS)} FROM events{clause} ORDER BY {order} LIMIT ?"
        with self._connection() as conn:
            return [_stored(row) for row in conn.execute(sql, [*args, limit])]

    def get(self, row_id: int) -> StoredEvent | None:
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT id, {', '.join(_COLUMNS)} FROM events WHERE id = ?", (row_id,)
            ).fetchone()
        return _stored(row) if row else None

    def count(self, where: EventFilter | None = None) -> int:
        clause, args = (where or EventFilter()).where()
        with self._connection() as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM events{clause}", args).fetchone()[0])

    def version(self) -> str:
        """Changes whenever rows are added or deleted (for the viewer's live refresh)."""
        with self._connection() as conn:
            top, total = conn.execute("SELECT MAX(id), COUNT(*) FROM events").fetchone()
        return f"{top or 0}-{total}"

    def event_names(self, limit: int = 200) -> list[tuple[str, int]]:
        """Event names seen, most frequent first."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT event, COUNT(*) AS n FROM events WHERE event IS NOT NULL "
                "GROUP BY event ORDER BY n DESC, event LIMIT ?",
                (limit,),
            ).fetchall()
        return [(str(name), int(n)) for name, n in rows]

    def ts_bounds(self, where: EventFilter | None = None) -> tuple[float | None, float | None]:
        """(oldest, newest) event time of the matching rows; Nones when there are none."""
        clause, args = (where or EventFilter()).where()
        with self._connection() as conn:
            low, high = conn.execute(
                f"SELECT MIN(ts), MAX(ts) FROM events{clause}", args
            ).fetchone()
        return (
            float(low) if low is not None else None,
            float(high) if high is not None else None,
        )

    def counts_over_time(
        self, where: EventFilter, start: float, bucket_seconds: float, buckets: int
    ) -> dict[str, list[int]]:
        """Rows per event name per time bucket, from ``start`` on (accepted ones unless
        ``where.status`` says otherwise)."""
        status = where.status or STATUS_ACCEPTED
        clause, args = EventFilter(**{**_fields(where), "status": status}).where()
        clause += (" AND" if clause else " WHERE") + " ts >= ? AND ts <= ? AND event IS NOT NULL"
        end = start + bucket_seconds * buckets
        sql = (
            f"SELECT event, CAST((ts - ?) / ? AS INTEGER) AS bucket, COUNT(*) FROM events{clause}"
            " GROUP BY event, bucket"
        )
        series: dict[str, list[int]] = {}
        with self._connection() as conn:
            for name, bucket, n in conn.execute(sql, [start, bucket_seconds, *args, start, end]):
                index = min(max(int(bucket), 0), buckets - 1)  # the end is inclusive
                series.setdefault(str(name), [0] * buckets)[index] += int(n)
        return series

    def person(self, distinct_id: str) -> PersonSummary:
        """What the sink knows of one person: counts, sessions, person properties ($set)."""
        with self._connection() as conn:
            count, first, last = conn.execute(
                "SELECT COUNT(*), MIN(ts), MAX(ts) FROM events WHERE distinct_id = ?",
                (distinct_id,),
            ).fetchone()
            sessions = [
                str(row[0])
                for row in conn.execute(
                    "SELECT session_id, MAX(ts) AS last FROM events WHERE distinct_id = ? "
                    "AND session_id IS NOT NULL GROUP BY session_id ORDER BY last DESC LIMIT 50",
                    (distinct_id,),
                )
            ]
            updates = conn.execute(
                "SELECT raw, properties FROM events WHERE distinct_id = ? AND status = ? "
                "AND (raw LIKE '%$set%' OR properties LIKE '%$set%') ORDER BY id",
                (distinct_id, STATUS_ACCEPTED),
            ).fetchall()
        return PersonSummary(
            distinct_id=distinct_id,
            count=int(count),
            first_seen=first,
            last_seen=last,
            sessions=sessions,
            person_properties=_person_properties(updates),
        )


# --------------------------------------------------------------------------- helpers


def _fields(where: EventFilter) -> dict[str, Any]:
    return {
        name: getattr(where, name)
        for name in ("event", "distinct_id", "session_id", "trace_id", "kind", "status")
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _loads(text: str | None, default: Any) -> Any:
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


_KEY_FIELDS = ("api_key", "token", "$token")


def key_fingerprint(key: str | None) -> str | None:
    """What the sink keeps of a project key: enough to tell projects apart, never the key."""
    if not key:
        return None
    digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:10]
    return f"key:{digest}"


def _without_keys(raw: Any, _depth: int = 0) -> Any:
    """``raw`` with project keys redacted, also inside ``properties`` (posthog-js sends one)."""
    if not isinstance(raw, dict) or _depth > 2:
        return raw
    cleaned = {k: ("<redacted>" if k in _KEY_FIELDS else v) for k, v in raw.items()}
    if isinstance(cleaned.get("properties"), dict):
        cleaned["properties"] = _without_keys(cleaned["properties"], _depth + 1)
    return cleaned


def _row(record: Record, received_at: float) -> tuple[Any, ...]:
    return (
        received_at,
        record.kind,
        record.endpoint,
        record.status,
        record.code,
        record.reason,
        key_fingerprint(record.api_key),
        record.uuid,
        record.event,
        record.distinct_id,
        record.session_id,
        record.trace_id,
        record.span_id,
        record.timestamp,
        record.ts if record.ts is not None else received_at,
        _dumps(_without_keys(record.properties)),
        _dumps(_without_keys(record.raw)),
        _dumps(record.warnings),
    )


def _stored(row: Sequence[Any]) -> StoredEvent:
    values = dict(zip(("id", *_COLUMNS), row, strict=True))
    properties = _loads(values.pop("properties"), {})
    raw = _loads(values.pop("raw"), None)
    warnings = _loads(values.pop("warnings"), [])
    return StoredEvent(
        **values,
        properties=properties if isinstance(properties, dict) else {},
        raw=raw,
        warnings=[str(w) for w in warnings] if isinstance(warnings, list) else [],
    )


def _person_properties(updates: list[tuple[str | None, str | None]]) -> dict[str, Any]:
    """Apply $set_once then $set updates in arrival order, as PostHog builds a person."""
    person: dict[str, Any] = {}
    for raw_text, props_text in updates:
        raw = _loads(raw_text, {})
        props = _loads(props_text, {})
        for holder in (raw, props):
            if not isinstance(holder, dict):
                continue
            once = holder.get("$set_once")
            if isinstance(once, dict):
                for key, value in once.items():
                    person.setdefault(key, value)
            updates_ = holder.get("$set")
            if isinstance(updates_, dict):
                person.update(updates_)
    return person
