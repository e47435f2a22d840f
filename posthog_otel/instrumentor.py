"""PosthogInstrumentor: one call (or ``opentelemetry-instrument``) wires everything up.

    from posthog_otel.instrumentor import PosthogInstrumentor

    PosthogInstrumentor().instrument(api_key="phc_...", capture_spans="roots")

It configures the default client, adds :class:`~posthog_otel.spans.processor.PosthogSpanProcessor` to
the given or global SDK ``TracerProvider`` (creating one when only the no-op provider exists),
adds :class:`~posthog_otel.propagation.propagator.PosthogPropagator` to the global propagator without
removing the configured ones, hooks ``Span.record_exception`` for live exception capture, and
enables every ``posthog_*`` instrumentor (``instrumentors/``) whose library is installed. It
imports none of those libraries: each is patched when the app imports it.
``uninstrument()`` undoes all of it. It never raises: a failure is logged and the app runs
uninstrumented.

Zero-code: ``opentelemetry-instrument python app.py`` loads it through the entry point
``opentelemetry_instrumentor`` = ``posthog``; ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=posthog``
turns it off. Options from the environment: ``POSTHOG_API_KEY``, ``POSTHOG_HOST``,
``POSTHOG_OTEL_CAPTURE_SPANS``, ``POSTHOG_OTEL_TRUST_INBOUND``,
``POSTHOG_OTEL_PROPAGATION_TARGETS``, ``POSTHOG_OTEL_DISABLED``, ``POSTHOG_OTEL_TRACES``,
``POSTHOG_OTEL_LOGS``, ``POSTHOG_OTEL_LOGS_LEVEL``.

``traces=True`` (or posthog-python's ``traces={...}`` dict, or ``POSTHOG_OTEL_TRACES=true``)
also exports every span of that provider to PostHog's ``/i/v1/traces``
(:mod:`posthog_otel.tracing`).

Logs: ``instrument(logs=True, logs_level="INFO")`` (env ``POSTHOG_OTEL_LOGS=true``,
``POSTHOG_OTEL_LOGS_LEVEL``) exports the app's ``logging`` records to PostHog's OTLP logs
endpoint with the context's identity (see :mod:`posthog_otel.logs`).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Collection
from importlib import metadata
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate as otel_propagate
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator

from . import global_client
from .config import CLIENT_OPTIONS, env_flag
from .spans import record_exception as span_exceptions
from .spans.processor import PosthogSpanProcessor

if TYPE_CHECKING:
    from .logs.install import LogsInstallation

__all__ = ["PosthogInstrumentor"]

_logger = logging.getLogger("posthog.otel")

_PROPAGATOR_OPTIONS = ("trust_inbound", "propagation_targets")


class PosthogInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """See the module docstring for what ``instrument()`` does and its options."""

    _processor: PosthogSpanProcessor | None = None
    _previous_textmap: TextMapPropagator | None = None
    _traces_client: Any = None
    _logs: LogsInstallation | None = None
    _enabled: list[BaseInstrumentor] = []  # noqa: RUF012 - replaced per instrument() call

    def instrumentation_dependencies(self) -> Collection[str]:
        return []

    def _instrument(self, **kwargs: Any) -> None:
        try:
            if env_flag("POSTHOG_OTEL_DISABLED"):
                _logger.info("posthog-otel is disabled by POSTHOG_OTEL_DISABLED")
                return
            self._configure(**kwargs)
        except ValueError as exc:  # a configuration error: one line, no traceback
            _logger.error(
                "posthog-otel could not instrument this app: invalid configuration: %s; "
                "it runs uninstrumented",
                exc,
            )
        except Exception:
            _logger.exception("posthog-otel could not instrument this app; it runs uninstrumented")

    def _configure(
        self,
        api_key: str | None = None,
        host: str | None = None,
        tracer_provider: Any = None,
        capture_spans: str | None = None,
        propagate: bool = True,
        native_attribute_aliases: bool = True,
        capture_exceptions: bool | None = None,
        instrument_libraries: bool = True,
        logs: bool | None = None,
        logs_level: Any = None,
        **options: Any,
    ) -> None:
        traces = options.pop("traces", None)
        if traces is None:
            traces = env_flag("POSTHOG_OTEL_TRACES")
        client_options = {k: v for k, v in options.items() if k in CLIENT_OPTIONS}
        propagator_options = {k: options[k] for k in _PROPAGATOR_OPTIONS if k in options}
        unknown = set(options) - CLIENT_OPTIONS - set(_PROPAGATOR_OPTIONS)
        if unknown:
            raise ValueError(f"unknown PosthogInstrumentor option(s): {', '.join(sorted(unknown))}")
        if api_key is not None or host is not None or client_options:
            if global_client.current_client() is not None:
                _logger.info(
                    "posthog-otel: instrument() replaces the default client with one "
                    "built from its arguments"
                )
            global_client.setup(api_key, host, **client_options)
        global_client.get_client()  # configuration problems are reported now, once

        if traces and tracer_provider is None:
            _traces_provider(traces)  # the provider gets the traces option's resource
        provider = _sdk_provider(tracer_provider)
        if provider is not None:
            # No client of its own: spans follow the default client, also when setup() later
            # replaces it.
            processor = PosthogSpanProcessor(
                capture_spans=capture_spans,
                capture_exceptions=capture_exceptions,
                native_attribute_aliases=native_attribute_aliases,
            )
            provider.add_span_processor(processor)
            self._processor = processor
            if traces:
                self._traces_client = global_client.get_client()
                self._traces_client.enable_traces(traces, tracer_provider=provider)
        if propagate:
            self._add_propagator(propagator_options)
        span_exceptions.hook_record_exception(global_client.get_client)
        self._enabled = _enable_library_instrumentors() if instrument_libraries else []
        if logs if logs is not None else _logs_from_env():
            self._install_logs(logs_level)

    def _install_logs(self, level: Any) -> None:
        try:
            from .logs.install import install
        except ImportError as exc:
            _logger.error(
                "posthog-otel: logs export needs OpenTelemetry's OTLP classes "
                "(pip install 'posthog-otel[otlp]'): %s; logs are not exported",
                exc,
            )
            return
        client = global_client.get_client()
        installed = self._logs = install(client, level)
        if installed is not None:
            client.attach_export("logs", installed.processor.export)

    def _add_propagator(self, options: dict[str, Any]) -> None:
        from .propagation.propagator import PosthogPropagator, find_posthog_propagator

        current = otel_propagate.get_global_textmap()
        if find_posthog_propagator(current) is not None:
            return
        self._previous_textmap = current
        otel_propagate.set_global_textmap(
            CompositePropagator([current, PosthogPropagator(**options)])
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        try:
            for instrumentor in self._enabled:
                instrumentor.uninstrument()
            self._enabled = []
            if self._previous_textmap is not None:
                otel_propagate.set_global_textmap(self._previous_textmap)
                self._previous_textmap = None
            span_exceptions.unhook_record_exception()
            traces_client, self._traces_client = self._traces_client, None
            if traces_client is not None:
                traces_client.disable_traces(2.0)
            installed, self._logs = self._logs, None
            if installed is not None:
                installed.uninstall()
                client = global_client.current_client()
                if client is not None:
                    client.attach_export("logs", None)
            processor, self._processor = self._processor, None
            if processor is not None:
                processor.force_flush(2_000)
                processor.enabled = False  # the SDK cannot remove a span processor
        except Exception:
            _logger.exception("posthog-otel could not fully uninstrument")


def _logs_from_env() -> bool:
    """``POSTHOG_OTEL_LOGS``; an unreadable value turns logs export off, not instrumentation."""
    try:
        return bool(env_flag("POSTHOG_OTEL_LOGS"))
    except ValueError as exc:
        _logger.error("posthog-otel: %s; logs are not exported", exc)
        return False


def _sdk_provider(given: Any) -> Any:
    """The SDK TracerProvider to add our processor to; creates and installs one if needed."""
    from opentelemetry.sdk.trace import TracerProvider

    provider = given if given is not None else trace.get_tracer_provider()
    if hasattr(provider, "add_span_processor"):
        return provider
    if given is not None:
        _logger.warning(
            "tracer_provider %r cannot take span processors; spans are not captured", given
        )
        return None
    created = TracerProvider()
    trace.set_tracer_provider(created)
    if trace.get_tracer_provider() is not created:
        _logger.warning("another tracer provider is installed; PostHog span capture is off")
        return None
    return created


def _traces_provider(traces: Any) -> None:
    """Create (when only the no-op provider exists) the SDK provider with the resource and
    span limits of the ``traces`` option; a problem with the option is reported later."""
    from .tracing.options import resolve_traces
    from .tracing.pipeline import sdk_provider

    try:
        options = resolve_traces(traces)
    except ValueError:
        return
    if options is not None:
        sdk_provider(None, options)


def _enable_library_instrumentors() -> list[BaseInstrumentor]:
    """Instrument every ``posthog_*`` instrumentor whose library is importable."""
    disabled = {
        name.strip()
        for name in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")
        if name.strip()
    }
    enabled: list[BaseInstrumentor] = []
    for name, value in _own_instrumentors():
        if name in disabled:
            continue
        try:
            module_name, _, class_name = value.partition(":")
            instrumentor = getattr(importlib.import_module(module_name), class_name)()
            if instrumentor.is_instrumented_by_opentelemetry:
                continue
            # one version check, in the instrumentor: a missing library is a debug line
            instrumentor.instrument(skip_dep_check=True)
            if instrumentor.is_instrumented_by_opentelemetry:
                enabled.append(instrumentor)
        except Exception:
            _logger.warning("posthog-otel could not enable %s", name, exc_info=True)
    return enabled


_instrumentor_entries: tuple[tuple[str, str], ...] | None = None


def _own_instrumentors() -> tuple[tuple[str, str], ...]:
    """Our ``posthog_*`` instrumentor entry points as (name, "module:Class"), read once.

    Only this distribution's metadata is read (scanning every installed distribution's entry
    points costs start-up time); without it installed there is none, as before.
    """
    global _instrumentor_entries
    if _instrumentor_entries is None:
        try:
            entries = metadata.distribution("posthog-otel").entry_points
        except metadata.PackageNotFoundError:
            entries = metadata.EntryPoints(())
        _instrumentor_entries = tuple(
            (entry.name, entry.value)
            for entry in entries.select(group="opentelemetry_instrumentor")
            if entry.name.startswith("posthog_")
        )
    return _instrumentor_entries
