"""PostHog context for Celery: it travels with each task, and task failures become ``$exception``.

Usage::

    from .celery import PosthogCeleryInstrumentor

    PosthogCeleryInstrumentor().instrument()                            # producer and worker
    PosthogCeleryInstrumentor().instrument(capture_task_events=True)    # + lifecycle events

or zero-code: ``PosthogInstrumentor().instrument()`` and ``opentelemetry-instrument`` enable it
when Celery (>= 5.3) is installed (entry point ``posthog_celery``). Instrument in both the
processes that send tasks and the workers (the app module, or Celery's ``worker_process_init``
signal, is a good place).

**Producer** (``before_task_publish``): the current PostHog context is written into the task
message's headers in two forms, so either side may be posthog-python:

* our ``posthog.*`` members of the ``baggage`` header (merged into a ``baggage`` header written
  by other propagators; never twice), plus ``X-POSTHOG-WINDOW-ID``;
* posthog-python's ``X-POSTHOG-DISTINCT-ID``, ``X-POSTHOG-SESSION-ID`` and
  ``X-POSTHOG-CONTEXT-TAGS`` (the tags as JSON), at the top level of the headers and inside
  the nested ``headers`` entry, where posthog-python's worker reads them.

Message queues always get the PostHog members: the propagation-target policy of HTTP clients
does not apply to them.

**Worker** (``task_prerun`` .. ``task_postrun``): each task runs in a fresh PostHog context
restored from the message (the ``posthog.*`` baggage members win over the ``X-POSTHOG-*``
headers when both are present; a task run inline with ``apply()`` or ``task_always_eager``
has no message, and its context is a child of the caller's instead), tagged ``celery_task_id`` and ``celery_task_name`` (the task's
own values win over propagated ones), so everything captured in the task, and every span
started in it, carries the producer's distinct id, session and tags. A task that raises is
captured once as ``$exception`` (``task_failure``) with that context; exceptions listed in the
task's ``throws`` (expected errors) and ``Retry`` are not. The same exception recorded on a span
by contrib's ``CeleryInstrumentor``, logged by Celery, or leaving a nested context is not sent
again.

**Lifecycle events** (off by default; ``capture_task_events=True`` or
``POSTHOG_OTEL_CELERY_EVENTS=true``): posthog-python's names and properties, ``celery task
published`` (producer), ``celery task started``, ``celery task success``, ``celery task
failure``, ``celery task retry`` with ``celery_task_id``, ``celery_task_name``, ``celery_state``,
``celery_hostname``, ``celery_queue``, ``celery_exchange``, ``celery_routing_key``,
``celery_retry_count``, ``celery_version``, ``celery_task_duration_ms`` (terminal states),
``error_type`` / ``error_message`` (failure) and ``celery_reason`` (retry).

Options of ``instrument()``: ``capture_task_events`` (bool), ``capture_exceptions`` (default
True), ``task_filter`` (``(task_name, properties) -> bool``; False skips the task's events and
exception capture, never its context), ``client`` (default: the default client).

**With contrib's** ``opentelemetry-instrumentation-celery``: contrib's handlers start the task's
CONSUMER span in the Context it extracts from the message and attach it; ours run after
contrib's (when contrib is instrumented later, our receivers are moved behind its), so our
context is entered inside that span (events carry its trace, the span gets the task's identity
and tags) and our headers are merged after contrib's inject. Our PostHog members are written
once whichever propagators contrib's inject ran.

The worker flushes the client when a worker process shuts down. ``uninstrument()`` disconnects
every receiver.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, MutableMapping
from typing import Any

from opentelemetry import trace

from posthog_otel import context as contexts
from posthog_otel._identity import FIELDS
from posthog_otel.config import env_flag
from posthog_otel.context import runtime as _runtime
from posthog_otel.delivery.encoding import json_safe
from posthog_otel.propagation.baggage import (
    MAX_INBOUND_TAGS,
    Inbound,
    parse_header,
    sanitize_header_value,
)
from posthog_otel.propagation.propagator import (
    BAGGAGE_HEADER,
    DISTINCT_ID_HEADER,
    SESSION_ID_HEADER,
    default_propagator,
    find_posthog_propagator,
    with_destination,
)

from ._base import PosthogLibraryInstrumentor

__all__ = [
    "CONTEXT_TAGS_HEADER",
    "PosthogCeleryInstrumentor",
]

_logger = logging.getLogger("posthog_otel")

CONTEXT_TAGS_HEADER = "X-POSTHOG-CONTEXT-TAGS"
_NESTED = "headers"  # protocol 2: custom headers that reach ``task.request.headers``
_STATE_ATTR = "_posthog_otel_task"
_MAX_TAGS_JSON = 64 * 1024
_CONTRIB_MODULE = "opentelemetry.instrumentation.celery"


class _Options:
    """What ``instrument()`` was given; read by the signal receivers."""

    def __init__(self) -> None:
        self.active = False
        self.client: Any = None
        self.capture_exceptions = True
        self.capture_task_events = False
        self.task_filter: Callable[[str | None, dict[str, Any]], bool] | None = None
        self.celery_version: str | None = None

    def get_client(self) -> Any:
        if self.client is not None:
            return self.client
        from posthog_otel import _default

        return _default.get_client()

    def tracked(self, task_name: str | None, properties: dict[str, Any]) -> bool:
        task_filter = self.task_filter
        if task_filter is None:
            return True
        try:
            return bool(task_filter(task_name, properties))
        except Exception:
            _logger.warning("posthog-otel celery task_filter raised; task tracked", exc_info=True)
            return True


_options = _Options()


class _TaskState:
    """One running task: its scope, the attach to undo, when it started."""

    __slots__ = ("attached", "scope", "started", "token")

    def __init__(self, scope: contexts.Scope, token: Any, attached: Any) -> None:
        self.scope = scope
        self.token = token
        self.attached = attached
        self.started = time.monotonic()


# -- producer -----------------------------------------------------------------------------


def _before_publish(sender: Any = None, headers: Any = None, **_: Any) -> None:
    if not _options.active or not isinstance(headers, MutableMapping):
        return
    try:
        _write_headers(headers)
    except Exception:
        _logger.debug("posthog-otel could not write PostHog context to a task", exc_info=True)


def _write_headers(headers: MutableMapping[str, Any]) -> None:
    current = _runtime.get_current()
    # A queue always propagates: no span or destination may make this look like an HTTP call
    # to a host that is not a propagation target.
    ctx = with_destination(None, trace.set_span_in_context(trace.INVALID_SPAN, current))
    from opentelemetry import propagate

    propagator = find_posthog_propagator(propagate.get_global_textmap()) or default_propagator()
    propagator.inject(headers, ctx)  # posthog.* baggage members + X-POSTHOG-* (ASCII) headers

    scope = contexts.current_scope(current)
    if scope is None:
        return
    state = scope.resolve()
    extra: dict[str, str] = {}
    distinct_id = sanitize_header_value(state.distinct_id)
    session_id = sanitize_header_value(state.session_id)
    if distinct_id:
        extra[DISTINCT_ID_HEADER] = distinct_id
    if session_id:
        extra[SESSION_ID_HEADER] = session_id
    tags = propagator.propagated_tags(state.tags) if state.tags else {}
    if tags:
        text = json.dumps(json_safe(tags), ensure_ascii=False, separators=(",", ":"))
        if len(text) <= _MAX_TAGS_JSON:
            extra[CONTEXT_TAGS_HEADER] = text
        else:
            _logger.debug("posthog-otel: task context tags over %d bytes not sent", _MAX_TAGS_JSON)
    if not extra:
        return
    headers.update(extra)
    nested = headers.get(_NESTED)
    if nested is None:
        nested = headers[_NESTED] = {}
    if isinstance(nested, MutableMapping):
        nested.update(extra)


def _after_publish(sender: Any = None, headers: Any = None, **kwargs: Any) -> None:
    if not (_options.active and _options.capture_task_events):
        return
    try:
        info = headers if isinstance(headers, Mapping) else {}
        task_name = sender if isinstance(sender, str) else getattr(sender, "name", None)
        properties: dict[str, Any] = {
            "celery_task_id": info.get("id"),
            "celery_task_name": task_name,
            "celery_state": "published",
            "celery_exchange": kwargs.get("exchange"),
            "celery_routing_key": kwargs.get("routing_key"),
            "celery_retry_count": info.get("retries"),
            "celery_version": _options.celery_version,
        }
        if _options.tracked(task_name, properties):
            _options.get_client().capture("celery task published", properties=properties)
    except Exception:
        _logger.debug("posthog-otel could not capture a published task", exc_info=True)


# -- worker -------------------------------------------------------------------------------


def _header(request: Any, nested: Mapping[str, Any], name: str) -> Any:
    value = getattr(request, name, None)
    if value is None:
        value = getattr(request, name.lower(), None)
    if value is None:
        value = nested.get(name)
        if value is None:
            value = nested.get(name.lower())
    return value


def _json_tags(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8", "replace")
    if not isinstance(raw, str) or not raw or len(raw) > _MAX_TAGS_JSON:
        return {}
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(parsed, dict):
        return {}
    tags: dict[str, Any] = {}
    for key, value in parsed.items():
        if isinstance(key, str) and key and len(tags) < MAX_INBOUND_TAGS:
            tags[key] = value
    return tags


def _inbound(request: Any) -> Inbound:
    """The producer's PostHog state from a task request (``posthog.*`` baggage wins)."""
    nested_raw = getattr(request, _NESTED, None)
    nested: Mapping[str, Any] = nested_raw if isinstance(nested_raw, Mapping) else {}
    baggage = _header(request, nested, BAGGAGE_HEADER)
    inbound = parse_header(baggage) if baggage else Inbound()
    for field in FIELDS:
        if field.name not in inbound.ids:
            inbound.set_id(field.name, _header(request, nested, field.header))
    json_tags = _json_tags(_header(request, nested, CONTEXT_TAGS_HEADER))
    if json_tags:
        inbound.tags = {**json_tags, **inbound.tags}
    return inbound


def _prerun(sender: Any = None, task_id: Any = None, task: Any = None, **_: Any) -> None:
    if not _options.active:
        return
    task = task if task is not None else sender
    request = getattr(task, "request", None)
    if request is None:
        return
    try:
        inbound = _inbound(request)
        if inbound or not getattr(request, "is_eager", False):
            scope = contexts.Scope(fresh=True, client=_options.client)
        else:  # run inline (apply(), task_always_eager): a child of the caller's context
            scope = contexts.Scope(client=_options.client, parent=contexts.current_scope())
        scope.update_ids(inbound.ids)
        task_id = task_id if task_id is not None else getattr(request, "id", None)
        scope.tags = {
            **inbound.tags,
            "celery_task_id": task_id,
            "celery_task_name": getattr(task, "name", None),
        }
        token, attached = contexts.attach_scope(scope)
        state = _TaskState(scope, token, attached)
        setattr(request, _STATE_ATTR, state)
        # contrib's CONSUMER span (current when its receiver ran first) takes our identity/tags.
        contexts.notify_changed(scope)
    except Exception:
        _logger.debug("posthog-otel could not restore a task's PostHog context", exc_info=True)
        return
    if _options.capture_task_events:
        _lifecycle(task, task_id, "started", None)


def _postrun(
    sender: Any = None, task_id: Any = None, task: Any = None, state: Any = None, **_: Any
) -> None:
    task = task if task is not None else sender
    request = getattr(task, "request", None)
    task_state: _TaskState | None = getattr(request, _STATE_ATTR, None)
    if task_state is None:
        return
    try:
        if _options.active and _options.capture_task_events and state == "SUCCESS":
            _lifecycle(task, task_id, "success", task_state)
    finally:
        _leave(request, task_state)


def _leave(request: Any, task_state: _TaskState) -> None:
    with contextlib.suppress(Exception):
        delattr(request, _STATE_ATTR)
    scope = task_state.scope
    current = _runtime.get_current()
    # Undo our attach unless a handler that ran before ours (contrib's) already unwound past it.
    # Close the scope only when a Context may still show it; threads the task started keep it.
    ours = current is task_state.attached or contexts.stored_scope(current) is scope
    if ours and not _runtime.detach(task_state.token, task_state.attached):
        scope.close()


def _failure(sender: Any = None, task_id: Any = None, exception: Any = None, **kwargs: Any) -> None:
    if not _options.active:
        return
    try:
        task = sender
        task_state: _TaskState | None = getattr(getattr(task, "request", None), _STATE_ATTR, None)
        expected = _expected(task, exception)
        properties = _task_properties(task, task_id, "failure", task_state)
        if isinstance(exception, BaseException):
            properties["error_type"] = type(exception).__name__
            properties["error_message"] = str(exception)
        tracked = _options.tracked(properties.get("celery_task_name"), properties)
        if not tracked:
            return
        with _in_task_context(task_state):
            if _options.capture_exceptions and isinstance(exception, Exception) and not expected:
                _options.get_client().capture_exception(
                    exception,
                    properties={"celery_task_id": task_id},
                    handled=False,
                )
            if _options.capture_task_events:
                _options.get_client().capture("celery task failure", properties=properties)
    except Exception:
        _logger.debug("posthog-otel could not capture a task failure", exc_info=True)


def _retry(sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
    if not (_options.active and _options.capture_task_events):
        return
    try:
        task = sender
        task_request = getattr(task, "request", None)
        task_state: _TaskState | None = getattr(task_request, _STATE_ATTR, None)
        task_id = getattr(request, "id", None) or getattr(task_request, "id", None)
        properties = _task_properties(task, task_id, "retry", task_state)
        properties["celery_reason"] = str(reason)
        if _options.tracked(properties.get("celery_task_name"), properties):
            with _in_task_context(task_state):
                _options.get_client().capture("celery task retry", properties=properties)
    except Exception:
        _logger.debug("posthog-otel could not capture a task retry", exc_info=True)


def _expected(task: Any, exception: Any) -> bool:
    throws = getattr(task, "throws", None)
    if not throws or not isinstance(exception, BaseException):
        return False
    try:
        return isinstance(exception, tuple(throws))
    except TypeError:
        return False


class _in_task_context:
    """Make the task's scope current for a capture, when something else is current."""

    __slots__ = ("_attached", "_state", "_token")

    def __init__(self, state: _TaskState | None) -> None:
        self._state = state
        self._token: Any = None
        self._attached: Any = None

    def __enter__(self) -> None:
        state = self._state
        if state is not None and contexts.current_scope() is not state.scope:
            self._token, self._attached = contexts.attach_scope(state.scope)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            contexts.detach_scope(self._token, self._attached)


def _lifecycle(task: Any, task_id: Any, name: str, task_state: _TaskState | None) -> None:
    try:
        properties = _task_properties(task, task_id, name, task_state)
        if _options.tracked(properties.get("celery_task_name"), properties):
            _options.get_client().capture(f"celery task {name}", properties=properties)
    except Exception:
        _logger.debug("posthog-otel could not capture celery task %s", name, exc_info=True)


def _task_properties(
    task: Any, task_id: Any, state: str, task_state: _TaskState | None
) -> dict[str, Any]:
    request = getattr(task, "request", None)
    delivery = getattr(request, "delivery_info", None)
    delivery = delivery if isinstance(delivery, Mapping) else {}
    if task_id is None:
        task_id = getattr(request, "id", None)
    properties: dict[str, Any] = {
        "celery_task_id": task_id,
        "celery_task_name": getattr(task, "name", None),
        "celery_state": state,
        "celery_hostname": getattr(request, "hostname", None),
        "celery_exchange": delivery.get("exchange"),
        "celery_routing_key": delivery.get("routing_key"),
        "celery_queue": delivery.get("queue"),
        "celery_retry_count": getattr(request, "retries", None),
        "celery_version": _options.celery_version,
    }
    if task_state is not None and state != "started":
        properties["celery_task_duration_ms"] = round(
            (time.monotonic() - task_state.started) * 1000.0, 3
        )
    return properties


def _flush(**_: Any) -> None:
    try:
        client = _options.client
        if client is None:
            from posthog_otel import _default

            client = _default.current_client()
        if client is not None:
            client.flush(5.0)
    except Exception:
        _logger.debug("posthog-otel could not flush at worker shutdown", exc_info=True)


# -- instrumentor -------------------------------------------------------------------------

# (signal name, receiver), in the order they are connected
_RECEIVERS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("before_task_publish", _before_publish),
    ("after_task_publish", _after_publish),
    ("task_prerun", _prerun),
    ("task_failure", _failure),
    ("task_retry", _retry),
    ("task_postrun", _postrun),
    ("worker_process_shutdown", _flush),
    ("worker_shutdown", _flush),
)


def _signals() -> Any:
    return importlib.import_module("celery.signals")


def _connect() -> None:
    """(Re)connect our receivers, so they come after every receiver connected before."""
    signals = _signals()
    for name, receiver in _RECEIVERS:
        signal = getattr(signals, name)
        signal.disconnect(receiver)
        signal.connect(receiver, weak=False)


def _disconnect() -> None:
    signals = _signals()
    for name, receiver in _RECEIVERS:
        getattr(signals, name).disconnect(receiver)


def _after_contrib_instrument(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """contrib's ``CeleryInstrumentor._instrument``, then our receivers moved behind its."""
    result = wrapped(*args, **kwargs)
    if _options.active:
        try:
            _connect()
        except Exception:
            _logger.debug("posthog-otel could not reorder its Celery receivers", exc_info=True)
    return result


def _contrib_class() -> Any:
    import importlib.util

    try:
        if importlib.util.find_spec(_CONTRIB_MODULE) is None:
            return None
        module = importlib.import_module(_CONTRIB_MODULE)
    except Exception:
        return None
    return getattr(module, "CeleryInstrumentor", None)


def _events_default() -> bool:
    try:
        return bool(env_flag("POSTHOG_OTEL_CELERY_EVENTS"))
    except ValueError:
        _logger.warning("POSTHOG_OTEL_CELERY_EVENTS is not true/false; Celery events stay off")
        return False


class PosthogCeleryInstrumentor(PosthogLibraryInstrumentor):
    """PostHog context across Celery tasks; see the module docstring for the options."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("celery >= 5.3",)

    def _instrument(self, **kwargs: Any) -> None:
        try:
            celery = importlib.import_module("celery")
            events = kwargs.get("capture_task_events")
            _options.capture_task_events = _events_default() if events is None else bool(events)
            _options.capture_exceptions = bool(kwargs.get("capture_exceptions", True))
            _options.task_filter = kwargs.get("task_filter")
            _options.client = kwargs.get("client")
            _options.celery_version = getattr(celery, "__version__", None)
            _options.active = True
            _connect()
            self._hook_contrib()
        except Exception:
            _options.active = False
            _logger.warning("posthog-otel could not instrument Celery", exc_info=True)

    def _hook_contrib(self) -> None:
        contrib = _contrib_class()
        if contrib is None:
            return
        import wrapt

        from ._outbound import find_wrapper

        if not find_wrapper(contrib.__dict__.get("_instrument"), _after_contrib_instrument):
            wrapt.wrap_function_wrapper(contrib, "_instrument", _after_contrib_instrument)

    def _uninstrument(self, **kwargs: Any) -> None:
        _options.active = False
        try:
            _disconnect()
            contrib = _contrib_class()
            if contrib is not None:
                from ._outbound import unwrap_ours

                unwrap_ours(contrib, "_instrument", _after_contrib_instrument)
        except Exception:
            _logger.debug("posthog-otel could not uninstrument Celery", exc_info=True)
