"""Logged exceptions as PostHog ``$exception`` events, and PostHog identity on log records.

Usage::

    from .logging import PosthogLoggingInstrumentor

    PosthogLoggingInstrumentor().instrument()                  # ERROR and above (default)
    PosthogLoggingInstrumentor().instrument(level="WARNING", ignore_loggers=["noisy.lib"])

    logging.basicConfig(format="%(levelname)s [%(posthog_distinct_id)s %(posthog_session_id)s] %(message)s")

    try:
        charge(order)
    except PaymentError:
        logger.exception("charge failed for %s", order.id)   # -> one $exception event

or zero-code: ``PosthogInstrumentor().instrument()`` and ``opentelemetry-instrument`` enable it
(entry point ``posthog_logging``; it needs no library).

It wraps the ``LogRecord`` factory (``logging.setLogRecordFactory``, chaining the factory that
was installed before), so it sees the records of every logger, whatever its handlers, filters
or ``propagate`` setting:

* every record gets ``posthog_distinct_id`` and ``posthog_session_id`` attributes (``None``
  outside a PostHog context), for formatters and structured-logging handlers;
* a record at or above ``level`` (option ``level``, a number or a level name; else
  ``POSTHOG_OTEL_LOG_LEVEL``; default ``ERROR``) that carries an exception
  (``logger.exception(...)``, ``logger.error(..., exc_info=True)``) is captured as
  ``$exception`` (``handled: true``) with the current context's identity, session and tags and
  the properties ``log_message`` (the formatted message, cut at 10,000 characters),
  ``logger_name`` and ``log_level``.
  Each exception object is captured once across every path: a context exit, a span, a
  framework middleware or a Celery task failure that already sent it wins, and whichever
  reports it first sends it.

Records without an exception are never sent as events (ship logs to PostHog with
OpenTelemetry's OTLP log exporter instead). Records from ``posthog_otel``'s own loggers, and
from loggers named in ``ignore_loggers`` (and their children), are not captured; a capture
that logs does not capture again. ``uninstrument()`` puts the previous factory back when ours
is still the installed one (otherwise ours stays in the chain, inert). Because the fields are
set by the factory, ``extra={"posthog_distinct_id": ...}`` is refused by ``logging`` like any
other built-in record attribute.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable
from typing import Any

from posthog_otel import context as contexts
from posthog_otel.config import logging_level
from posthog_otel.context import runtime as _runtime

from ._base import PosthogLibraryInstrumentor

__all__ = ["PosthogLoggingInstrumentor"]

_logger = logging.getLogger("posthog.otel")

DISTINCT_ID_FIELD = "posthog_distinct_id"
SESSION_ID_FIELD = "posthog_session_id"
# our own loggers (posthog.otel) and posthog-python's (posthog): never turned into events
_OWN_LOGGERS = ("posthog", "posthog_otel")
_PROBE = "posthog_otel.probe"
_DEFAULT_LEVEL = logging.ERROR
_MAX_MESSAGE = 10_000  # characters of log_message kept


class _State:
    def __init__(self) -> None:
        self.active = False
        self.level = _DEFAULT_LEVEL
        self.client: Any = None
        self.ignored: tuple[str, ...] = _OWN_LOGGERS
        self.previous: Callable[..., logging.LogRecord] | None = None
        self.factory: Callable[..., logging.LogRecord] | None = None
        self.local = threading.local()  # .busy: a capture is running on this thread


_state = _State()


def _ignored(name: str | None) -> bool:
    if not name:
        return False
    return any(name == prefix or name.startswith(prefix + ".") for prefix in _state.ignored)


def _make_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def posthog_record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not _state.active and record.name != _PROBE:
            return record
        # Never break logging, and never log from here (it would recurse).
        with contextlib.suppress(Exception):
            _enrich(record)
        return record

    return posthog_record_factory


def _enrich(record: logging.LogRecord) -> None:
    distinct_id = session_id = None
    ctx = _runtime.get_current()
    scope = contexts.current_scope(ctx)
    if scope is not None:
        state = scope.resolve()
        distinct_id, session_id = state.distinct_id, state.session_id
    record.__dict__[DISTINCT_ID_FIELD] = distinct_id
    record.__dict__[SESSION_ID_FIELD] = session_id
    exc_info = record.exc_info
    if (
        exc_info
        and isinstance(exc_info, tuple)
        and record.levelno >= _state.level
        and not _ignored(record.name)
        and not getattr(_state.local, "busy", False)
    ):
        _capture(record, exc_info[1])


def _capture(record: logging.LogRecord, exc: BaseException | None) -> None:
    if not isinstance(exc, Exception):
        return
    from posthog_otel.errors import is_captured

    if is_captured(exc):
        return
    local = _state.local
    local.busy = True
    try:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        if len(message) > _MAX_MESSAGE:
            message = message[:_MAX_MESSAGE] + "…"
        client = _state.client
        if client is None:
            from posthog_otel import global_client

            client = global_client.get_client()
        client.capture_exception(
            exc,
            properties={
                "log_message": message,
                "logger_name": record.name,
                "log_level": record.levelname,
            },
            handled=True,
        )
    except Exception:
        _logger.debug("posthog-otel could not capture a logged exception", exc_info=True)
    finally:
        local.busy = False


def _configured_level(given: Any) -> int:
    if given is not None:
        return logging_level(given, "level")  # a bad value given in code is the caller's error
    raw = os.environ.get("POSTHOG_OTEL_LOG_LEVEL")
    if raw is None or not raw.strip():
        return _DEFAULT_LEVEL
    try:
        return logging_level(raw, "POSTHOG_OTEL_LOG_LEVEL")
    except ValueError:
        _logger.warning("POSTHOG_OTEL_LOG_LEVEL=%r is not a logging level; using ERROR", raw)
        return _DEFAULT_LEVEL


def _installed(factory: Callable[..., logging.LogRecord]) -> bool:
    """Whether ``factory`` still takes part in making records (maybe under other factories)."""
    current = logging.getLogRecordFactory()
    if current is factory:
        return True
    try:
        probe = current(_PROBE, logging.DEBUG, __file__, 0, "", (), None)
        return DISTINCT_ID_FIELD in probe.__dict__
    except Exception:
        return False


class PosthogLoggingInstrumentor(PosthogLibraryInstrumentor):
    """Logged exceptions -> ``$exception``; identity fields on records. See the module docstring.

    Options of ``instrument()``: ``level`` (default ``POSTHOG_OTEL_LOG_LEVEL`` or ``ERROR``),
    ``ignore_loggers`` (names whose records, and their children's, are never captured),
    ``client`` (default: the default client).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        level = _configured_level(kwargs.get("level"))  # ValueError for a bad level in code
        try:
            ignore: Iterable[str] = kwargs.get("ignore_loggers") or ()
            _state.ignored = (*_OWN_LOGGERS, *(str(name) for name in ignore))
            _state.level = level
            _state.client = kwargs.get("client")
            factory = _state.factory
            if factory is None or not _installed(factory):
                _state.previous = logging.getLogRecordFactory()
                factory = _make_factory(_state.previous)
                _state.factory = factory
                logging.setLogRecordFactory(factory)
            _state.active = True
        except Exception:
            _logger.warning("posthog-otel could not instrument logging", exc_info=True)

    def _uninstrument(self, **kwargs: Any) -> None:
        _state.active = False
        try:
            factory = _state.factory
            if factory is not None and logging.getLogRecordFactory() is factory:
                logging.setLogRecordFactory(_state.previous or logging.LogRecord)
                _state.factory = None
                _state.previous = None
        except Exception:
            _logger.debug("posthog-otel could not uninstrument logging", exc_info=True)
