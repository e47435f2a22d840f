"""Turning logs export on for the app's Python ``logging``, once, and off again.

:func:`install` puts a :class:`~.processor.PosthogLogProcessor` where the app's log records
already go, or makes that path:

* an OpenTelemetry ``LoggingHandler`` is already on the root logger (the app's own, or
  ``opentelemetry-instrument`` with ``OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=true``):
  the processor joins that handler's SDK ``LoggerProvider``; no second handler, each record is
  translated once, and the provider's other processors are unchanged (the PostHog attributes
  are added to our copy only);
* otherwise a ``LoggerProvider`` of our own (the tracer provider's resource, so logs carry the
  same ``service.name`` as spans; not made global) with only our processor, and one
  ``LoggingHandler`` at the threshold level on the root logger. While it is there,
  ``logging.basicConfig``, ``logging.config.dictConfig`` and ``fileConfig`` take it off during
  the call and put it back afterwards, so an app that configures logging after instrumenting
  still gets its own console output (``basicConfig`` is a no-op when the root logger already
  has a handler).

The level threshold is the ``level`` given, else ``POSTHOG_OTEL_LOGS_LEVEL``, else ``INFO``
(the root logger's own level still applies: Python's default is ``WARNING``).

Usage (``PosthogInstrumentor().instrument(logs=True)`` does this)::

    installed = install(client, level="INFO")   # None when the client cannot send
    installed.processor.stats()
    installed.uninstall()
"""

from __future__ import annotations

import functools
import logging
import logging.config
import os
import warnings
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk.resources import Resource

from ..config import logging_level
from ._sdk import handler_provider
from .processor import PosthogLogProcessor

__all__ = ["LogsInstallation", "install", "threshold"]

_logger = logging.getLogger("posthog.otel")

LEVEL_VARIABLE = "POSTHOG_OTEL_LOGS_LEVEL"
_DEFAULT_LEVEL = logging.INFO
_CONFIG_FUNCTIONS = (
    (logging, "basicConfig"),
    (logging.config, "dictConfig"),
    (logging.config, "fileConfig"),
)


def threshold(given: Any = None) -> int:
    """The export threshold: ``given``, else ``POSTHOG_OTEL_LOGS_LEVEL``, else INFO.

    A bad ``given`` raises ``ValueError``; a bad environment value is logged and INFO used.
    """
    if given is not None:
        return logging_level(given, "logs_level")
    raw = os.environ.get(LEVEL_VARIABLE, "").strip()
    if not raw:
        return _DEFAULT_LEVEL
    try:
        return logging_level(raw, LEVEL_VARIABLE)
    except ValueError as exc:
        _logger.warning("posthog-otel: %s; logs are exported from INFO", exc)
        return _DEFAULT_LEVEL


class LogsInstallation:
    """What :func:`install` did, so :meth:`uninstall` can undo exactly that."""

    def __init__(
        self,
        processor: PosthogLogProcessor,
        provider: Any,
        handler: logging.Handler | None,
    ) -> None:
        self.processor = processor
        self.provider = provider  # the SDK LoggerProvider the processor is in
        self.handler = handler  # ours, on the root logger; None when the app's is shared
        self._wrapped: list[tuple[Any, str, Callable[..., Any], Callable[..., Any]]] = []
        if handler is not None:
            self._wrap_config_functions(handler)

    @property
    def shared(self) -> bool:
        """True when the processor joined a provider and handler the app had already."""
        return self.handler is None

    def _wrap_config_functions(self, handler: logging.Handler) -> None:
        for owner, name in _CONFIG_FUNCTIONS:
            original = getattr(owner, name)
            wrapper = _keeping_handler(original, handler)
            setattr(owner, name, wrapper)
            self._wrapped.append((owner, name, original, wrapper))

    def uninstall(self, flush_timeout: float = 2.0) -> None:
        """Take our handler off, flush what is queued, stop exporting."""
        for owner, name, original, wrapper in reversed(self._wrapped):
            if getattr(owner, name) is wrapper:
                setattr(owner, name, original)
        self._wrapped = []
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
        self.processor.force_flush(int(flush_timeout * 1000))
        self.processor.active = False  # the SDK cannot remove a processor from a provider
        if self.handler is not None:
            self.processor.shutdown()  # our own provider: nothing else uses it


def _keeping_handler(function: Callable[..., Any], handler: logging.Handler) -> Callable[..., Any]:
    @functools.wraps(function)
    def configure(*args: Any, **kwargs: Any) -> Any:
        root = logging.getLogger()
        present = handler in root.handlers
        if present:
            root.removeHandler(handler)
        try:
            return function(*args, **kwargs)
        finally:
            if present and handler not in root.handlers:
                root.addHandler(handler)

    return configure


def _shared_provider() -> Any:
    """The SDK provider of an OpenTelemetry logging handler already on the root logger."""
    for handler in logging.getLogger().handlers:
        if not isinstance(handler, LoggingHandler):
            continue
        provider = handler_provider(handler)
        if provider is not None:
            return provider
    return None


def _resource() -> Resource:
    provider = trace.get_tracer_provider()
    resource = getattr(provider, "resource", None)
    if isinstance(resource, Resource):
        return resource
    return Resource.create()


def install(client: Any, level: Any = None) -> LogsInstallation | None:
    """Export the app's log records at or above ``level`` with ``client``'s project and host.

    None (and a log line) when the client cannot send (no API key, disabled). A bad ``level``
    raises ``ValueError``.
    """
    floor = threshold(level)
    settings = client.settings
    if not settings.api_key or settings.disabled:
        _logger.warning(
            "posthog-otel: logs export needs a project API key and an enabled client; "
            "logs are not exported"
        )
        return None
    processor = PosthogLogProcessor(settings, level=floor, is_disabled=lambda: client.disabled)
    provider = _shared_provider()
    if provider is not None:
        provider.add_log_record_processor(processor)
        return LogsInstallation(processor, provider, None)
    provider = LoggerProvider(resource=_resource())
    provider.add_log_record_processor(processor)
    with warnings.catch_warnings():  # the SDK marks its handler deprecated; it is what we use
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=floor, logger_provider=provider)
    logging.getLogger().addHandler(handler)
    return LogsInstallation(processor, provider, handler)
