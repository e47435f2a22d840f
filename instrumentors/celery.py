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
  by other propagators; never twice), plus the ``X-POSTHOG-*`` header of every identity field;
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

The message headers are written and read in ``_celery_headers``, the signal receivers live in
``_celery_receivers``; this module connects them.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection
from typing import Any

from posthog_otel.config import env_flag

from ._base import ImportHooks, PosthogLibraryInstrumentor, imported
from ._celery_headers import CONTEXT_TAGS_HEADER
from ._celery_receivers import RECEIVERS, options

__all__ = [
    "CONTEXT_TAGS_HEADER",
    "PosthogCeleryInstrumentor",
]

_logger = logging.getLogger("posthog.otel")

_CONTRIB_MODULE = "opentelemetry.instrumentation.celery"


def _signals() -> Any:
    return importlib.import_module("celery.signals")


def _connect() -> None:
    """(Re)connect our receivers, so they come after every receiver connected before."""
    signals = _signals()
    for name, receiver in RECEIVERS:
        signal = getattr(signals, name)
        signal.disconnect(receiver)
        signal.connect(receiver, weak=False)


def _disconnect() -> None:
    signals = _signals()
    for name, receiver in RECEIVERS:
        getattr(signals, name).disconnect(receiver)


def _after_contrib_instrument(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """contrib's ``CeleryInstrumentor._instrument``, then our receivers moved behind its."""
    result = wrapped(*args, **kwargs)
    if options.active:
        try:
            _connect()
        except Exception:
            _logger.debug("posthog-otel could not reorder its Celery receivers", exc_info=True)
    return result


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
        events = kwargs.get("capture_task_events")
        options.capture_task_events = _events_default() if events is None else bool(events)
        options.capture_exceptions = bool(kwargs.get("capture_exceptions", True))
        options.task_filter = kwargs.get("task_filter")
        options.client = kwargs.get("client")
        options.active = True
        _hooks.start(self.library_supported)
        _hooks.when_imported("celery", _connect_receivers)
        _hooks.when_imported(_CONTRIB_MODULE, _hook_contrib)

    def _uninstrument(self, **kwargs: Any) -> None:
        options.active = False
        _hooks.stop()
        try:
            if imported("celery") is not None:
                _disconnect()
            contrib = imported(_CONTRIB_MODULE)
            if contrib is not None:
                from ._outbound import unwrap_ours

                unwrap_ours(contrib.CeleryInstrumentor, "_instrument", _after_contrib_instrument)
        except Exception:
            _logger.debug("posthog-otel could not uninstrument Celery", exc_info=True)


_hooks = ImportHooks("Celery")


def _connect_receivers(celery: Any) -> None:
    options.celery_version = getattr(celery, "__version__", None)
    _connect()


def _hook_contrib(contrib_module: Any) -> None:
    """Keep our receivers behind contrib's ``CeleryInstrumentor``'s, whenever it connects."""
    import wrapt

    from ._outbound import find_wrapper

    contrib = contrib_module.CeleryInstrumentor
    if not find_wrapper(contrib.__dict__.get("_instrument"), _after_contrib_instrument):
        wrapt.wrap_function_wrapper(contrib, "_instrument", _after_contrib_instrument)
