"""The base class of our library instrumentors.

``PosthogInstrumentor`` enables every ``posthog_*`` instrumentor itself, and under
``opentelemetry-instrument`` the auto-loader then calls ``instrument()`` on each again. Stock
``BaseInstrumentor`` answers that second call with a warning; ours returns quietly.

``opentelemetry-instrument`` calls every instrumentor with ``skip_dep_check=True`` (it checks
the distribution's requirements, and ours instrument optional libraries), and so does
``PosthogInstrumentor``. Ours check their library anyway, but only when the app imports it (the
first import hook to fire reads the installed version, once per ``instrument()``), so start-up
reads no package metadata for a library the app does not use: an imported library with no
installed distribution is a debug line, a version we do not support one warning line, never a
traceback, and nothing of it is patched. A direct ``instrument()`` call checks at once, as
contrib's instrumentors do.

Switching PostHog off switches the whole family off: with ``posthog`` listed in
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` (the auto-loader still loads ``posthog_flask`` and
the others, which have their own entry points) or ``POSTHOG_OTEL_DISABLED`` set, ``instrument()``
does nothing.

``instrument()`` never imports the library it instruments: :class:`ImportHooks` patches a module
when the app imports it (at once if it already has), so an app pays only for what it uses.

    class PosthogRequestsInstrumentor(PosthogLibraryInstrumentor): ...

    _hooks = ImportHooks("requests")
    _hooks.start(self.library_supported)             # in _instrument
    _hooks.when_imported("requests.adapters", patch) # patch(module), now or on import
    _hooks.stop()                                    # in _uninstrument: pending hooks do nothing
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import wrapt
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

__all__ = [
    "ImportHooks",
    "PosthogLibraryInstrumentor",
    "imported",
    "instrument_after_init",
    "posthog_disabled",
]

_logger = logging.getLogger("posthog.otel")


def posthog_disabled() -> bool:
    """Whether the user switched posthog-otel off (see the module docstring)."""
    disabled = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    if "posthog" in {name.strip() for name in disabled.split(",")}:
        return True
    from posthog_otel.config import env_flag

    try:
        return bool(env_flag("POSTHOG_OTEL_DISABLED"))
    except ValueError:
        return True  # PosthogInstrumentor does not start on an unreadable value either


class PosthogLibraryInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    _supported: bool | None = None  # the library's version check, once per instrument()

    def instrument(self, **kwargs: Any) -> Any:
        if self.is_instrumented_by_opentelemetry or posthog_disabled():
            return None
        self._supported = None
        if kwargs.pop("skip_dep_check", False):
            # checked by library_supported() when the app imports the library, never before
            return super().instrument(skip_dep_check=True, **kwargs)
        return super().instrument(**kwargs)

    def _check_dependency_conflicts(self) -> Any:
        conflict = super()._check_dependency_conflicts()
        self._supported = conflict is None
        return conflict

    def library_supported(self) -> bool:
        """Whether the installed library is a version we instrument: read once, logged once."""
        supported = self._supported
        if supported is None:
            supported = self._supported = self._library_present()
        return supported

    def _library_present(self) -> bool:
        conflict = get_dependency_conflicts(self.instrumentation_dependencies())
        if conflict is None:
            return True
        name = type(self).__name__
        if conflict.found is None and not conflict.found_any:
            _logger.debug("posthog-otel: %s skipped, %s is not installed", name, conflict.required)
        else:
            _logger.warning("posthog-otel: %s skipped: %s", name, conflict)
        return False


def instrument_after_init(
    instrument_app: Callable[..., Any], options: dict[str, Any], framework: str
) -> Callable[..., Any]:
    """A wrapt wrapper for an app class's ``__init__``: instrument each app once it is built.

    A failure to instrument is logged; the app is built and returned whatever happens.
    """

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)
        try:
            instrument_app(instance, **options)
        except Exception:
            _logger.warning("posthog-otel could not instrument a %s app", framework, exc_info=True)
        return result

    return wrapper


def imported(name: str) -> ModuleType | None:
    """The module ``name`` if the app has imported it, else None (never imports it)."""
    return sys.modules.get(name)


class ImportHooks:
    """An instrumentor's post-import hooks: each patches one module once the app imports it.

    A hook runs at most once per ``start()``: ``stop()`` (and a later ``start()``) leaves the
    hooks registered before it inert, since wrapt cannot take a hook back. A hook that fails
    is logged; it never fails the app's import.
    """

    def __init__(self, library: str) -> None:
        self.library = library
        self.active = False
        self._generation = 0
        self._supported: Callable[[], bool] | None = None

    def start(self, supported: Callable[[], bool] | None = None) -> None:
        """Arm the hooks; ``supported()``, when given, runs before each and can refuse it."""
        self._generation += 1
        self.active = True
        self._supported = supported

    def stop(self) -> None:
        self._generation += 1
        self.active = False

    def when_imported(self, module: str, patch: Callable[[ModuleType], object]) -> None:
        """Run ``patch(module)`` now if ``module`` is imported, else right after its import."""
        generation = self._generation

        def hook(loaded: ModuleType) -> None:
            if not self.active or self._generation != generation:
                return
            try:
                supported = self._supported
                if supported is not None and not supported():
                    return
                patch(sys.modules.get(module) or loaded)
            except Exception:
                _logger.warning(
                    "posthog-otel could not instrument %s", self.library, exc_info=True
                )

        wrapt.register_post_import_hook(hook, module)
