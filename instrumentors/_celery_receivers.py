"""The Celery signal receivers: the task's PostHog context, its exception, its lifecycle events.

Private to :mod:`posthog_otel.instrumentors.celery`, which connects :data:`RECEIVERS` and
sets :data:`options` from ``instrument()`` (its docstring describes the behaviour).

Usage::

    from ._celery_receivers import RECEIVERS, options

    options.active = True
    for name, receiver in RECEIVERS:
        getattr(celery.signals, name).connect(receiver, weak=False)
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from posthog_otel import context as contexts
from posthog_otel.context import runtime as _runtime

from ._celery_headers import inbound_state, write_headers

__all__ = ["RECEIVERS", "Options", "options"]

_logger = logging.getLogger("posthog.otel")

_STATE_ATTR = "_posthog_otel_task"


class Options:
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
        from posthog_otel import global_client

        return global_client.get_client()

    def tracked(self, task_name: str | None, properties: dict[str, Any]) -> bool:
        task_filter = self.task_filter
        if task_filter is None:
            return True
        try:
            return bool(task_filter(task_name, properties))
        except Exception:
            _logger.warning("posthog-otel celery task_filter raised; task tracked", exc_info=True)
            return True


options = Options()


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
    if not options.active or not isinstance(headers, MutableMapping):
        return
    try:
        write_headers(headers)
    except Exception:
        _logger.debug("posthog-otel could not write PostHog context to a task", exc_info=True)


def _after_publish(sender: Any = None, headers: Any = None, **kwargs: Any) -> None:
    if not (options.active and options.capture_task_events):
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
            "celery_version": options.celery_version,
        }
        if options.tracked(task_name, properties):
            options.get_client().capture("celery task published", properties=properties)
    except Exception:
        _logger.debug("posthog-otel could not capture a published task", exc_info=True)


# -- worker -------------------------------------------------------------------------------


def _prerun(sender: Any = None, task_id: Any = None, task: Any = None, **_: Any) -> None:
    if not options.active:
        return
    task = task if task is not None else sender
    request = getattr(task, "request", None)
    if request is None:
        return
    try:
        inbound = inbound_state(request)
        if inbound or not getattr(request, "is_eager", False):
            scope = contexts.Scope(fresh=True, client=options.client)
        else:  # run inline (apply(), task_always_eager): a child of the caller's context
            scope = contexts.Scope(client=options.client, parent=contexts.current_scope())
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
    if options.capture_task_events:
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
        if options.active and options.capture_task_events and state == "SUCCESS":
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
    if not options.active:
        return
    try:
        task = sender
        task_state: _TaskState | None = getattr(getattr(task, "request", None), _STATE_ATTR, None)
        expected = _expected(task, exception)
        properties = _task_properties(task, task_id, "failure", task_state)
        if isinstance(exception, BaseException):
            properties["error_type"] = type(exception).__name__
            properties["error_message"] = str(exception)
        tracked = options.tracked(properties.get("celery_task_name"), properties)
        if not tracked:
            return
        with _in_task_context(task_state):
            if options.capture_exceptions and isinstance(exception, Exception) and not expected:
                options.get_client().capture_exception(
                    exception,
                    properties={"celery_task_id": task_id},
                    handled=False,
                )
            if options.capture_task_events:
                options.get_client().capture("celery task failure", properties=properties)
    except Exception:
        _logger.debug("posthog-otel could not capture a task failure", exc_info=True)


def _retry(sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
    if not (options.active and options.capture_task_events):
        return
    try:
        task = sender
        task_request = getattr(task, "request", None)
        task_state: _TaskState | None = getattr(task_request, _STATE_ATTR, None)
        task_id = getattr(request, "id", None) or getattr(task_request, "id", None)
        properties = _task_properties(task, task_id, "retry", task_state)
        properties["celery_reason"] = str(reason)
        if options.tracked(properties.get("celery_task_name"), properties):
            with _in_task_context(task_state):
                options.get_client().capture("celery task retry", properties=properties)
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
        if options.tracked(properties.get("celery_task_name"), properties):
            options.get_client().capture(f"celery task {name}", properties=properties)
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
        "celery_version": options.celery_version,
    }
    if task_state is not None and state != "started":
        properties["celery_task_duration_ms"] = round(
            (time.monotonic() - task_state.started) * 1000.0, 3
        )
    return properties


def _flush(**_: Any) -> None:
    try:
        client = options.client
        if client is None:
            from posthog_otel import global_client

            client = global_client.current_client()
        if client is not None:
            client.flush(5.0)
    except Exception:
        _logger.debug("posthog-otel could not flush at worker shutdown", exc_info=True)


# (signal name, receiver), in the order they are connected
RECEIVERS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("before_task_publish", _before_publish),
    ("after_task_publish", _after_publish),
    ("task_prerun", _prerun),
    ("task_failure", _failure),
    ("task_retry", _retry),
    ("task_postrun", _postrun),
    ("worker_process_shutdown", _flush),
    ("worker_shutdown", _flush),
)
