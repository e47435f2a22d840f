"""What the :class:`~posthog_otel.Client` mixins may use of the client, declared once.

The exception, person/group and flag methods live in mixins (``_exception_methods``,
``_person_methods``, ``_flag_methods``); they build on the client's event pipeline, which
:class:`~posthog_otel.client.Client` implements. This base names that pipeline so each mixin
is type-checked against one declaration.

Usage::

    class PersonMethods(ClientCore):
        def set(self, ...):
            return self._enqueue(message, timestamp, uuid, disable_geoip)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import errors
from .config import ClientSettings
from .flags import FlagEvaluator

__all__ = ["ClientCore", "Refine"]

Refine = Callable[[dict[str, Any]], dict[str, Any]]


class ClientCore:
    """The client's state and event pipeline, as the mixins see them (set by ``Client``)."""

    _frames: errors.FrameOptions
    _settings: ClientSettings
    _flags: FlagEvaluator
    _disabled: bool
    _debug: bool
    before_send: Any

    def _capture(
        self,
        event: str,
        distinct_id: Any,
        properties: Mapping[str, Any] | None,
        timestamp: Any,
        uuid: Any,
        groups: Mapping[str, Any] | None,
        disable_geoip: bool | None,
        *,
        send_feature_flags: Any = False,
        flags: Any = None,
        refine: Refine | None = None,
    ) -> str | None:
        """Build an event from the current context and queue it (see ``Client._capture``)."""
        raise NotImplementedError

    def _enqueue(
        self,
        message: dict[str, Any],
        timestamp: Any,
        uuid: Any,
        disable_geoip: bool | None,
        refine: Refine | None = None,
    ) -> str | None:
        """Finish a built message and queue it (see ``Client._enqueue``)."""
        raise NotImplementedError

    def _refuse(self) -> None:
        """Count a call on a disabled client (see ``Client._refuse``)."""
        raise NotImplementedError
