"""Feature flags, evaluated by posthog-python on behalf of a :class:`~posthog_otel.Client`.

posthog-otel does not evaluate flags itself. With the ``flags`` extra installed
(``pip install 'posthog-otel[flags]'``), each client lazily builds one posthog-python client
from its own settings (project key, host, ``personal_api_key``/``secret_key``,
``poll_interval``, ``feature_flags_request_timeout_seconds``, ``enable_local_evaluation``,
``flag_fallback_cache_url``, ...) and asks it. That client never sends anything itself: the
``$feature_flag_called`` (and ``$experiment_exposure``) events it produces, deduplicated as
posthog-python deduplicates them, are handed to our client, so they go through our queue,
``before_send``, super properties and the current context. Without posthog-python a flag call
raises :class:`FlagsUnavailableError`, naming the extra.

The distinct id, groups (the context's ``$groups`` tag) and device id of a flag call default to
the current posthog-otel context (the distinct and device id also to ``posthog.*`` baggage).

Usage (the client does this; see :class:`~posthog_otel.Client`)::

    evaluator = FlagEvaluator(settings, forward=client_capture_for_flag_events)
    value = evaluator.call("get_feature_flag", ("beta",), None, None, None)
    evaluator.shutdown()
"""

from __future__ import annotations

import inspect
import logging
import threading
import uuid as uuid_module
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage as otel_baggage

from . import _identity
from .config import DEFAULT_HOST, ClientSettings
from .context import current_scope, get_context_device_id, get_context_distinct_id

if TYPE_CHECKING:
    from posthog.client import Client as PosthogClient

__all__ = [
    "FLAGS_INSTALL",
    "FlagEvaluator",
    "FlagsUnavailableError",
    "context_groups",
    "flag_event_refiner",
]

_logger = logging.getLogger("posthog_otel")

FLAGS_INSTALL = "pip install 'posthog-otel[flags]'"

# What our settings give the posthog-python client, by its option name. The secret key is
# chosen separately (posthog-python 7.x renamed personal_api_key to secret_key).
_PASSED_THROUGH = (
    "poll_interval",
    "feature_flags_request_timeout_seconds",
    "feature_flags_request_max_retries",
    "enable_local_evaluation",
    "flag_fallback_cache_url",
    "flag_definition_cache_provider",
    "disable_geoip",
    "debug",
    "disabled",
)
ForwardEvent = Callable[[str, dict[str, Any]], Any]


class FlagsUnavailableError(ImportError):
    """Feature flags need posthog-python, which is not installed."""


def load_posthog() -> ModuleType:
    """posthog-python, or :class:`FlagsUnavailableError` saying which extra to install."""
    try:
        import posthog
    except ImportError as exc:
        raise FlagsUnavailableError(
            "posthog-otel evaluates feature flags with posthog-python, which is not installed: "
            f"{FLAGS_INSTALL}"
        ) from exc
    return posthog


def _forward_capture(self: Any, event: str, **kwargs: Any) -> str | None:
    """``capture`` of the posthog-python flag client: the event is handed to our client."""
    forward: ForwardEvent | None = getattr(self, "_posthog_otel_forward", None)
    if forward is None:  # still inside __init__: nothing of ours to send yet
        return None
    result = forward(event, kwargs)
    return result if isinstance(result, str) else None


def _forwarding_class(module: ModuleType) -> type[PosthogClient]:
    """A posthog-python client whose events go to our client instead of its own queue."""
    cls: type[PosthogClient] = type(
        "PosthogOtelFlagClient", (module.Client,), {"capture": _forward_capture}
    )
    return cls


def delegate_options(settings: ClientSettings, accepted: Mapping[str, Any]) -> dict[str, Any]:
    """The posthog-python options built from ``settings``, limited to those it ``accepted``."""
    options: dict[str, Any] = {
        "host": settings.host or DEFAULT_HOST,
        # never send on its own: every event it makes is handed to our client
        "send": False,
        "sync_mode": True,
        "enable_exception_autocapture": False,
    }
    for name in _PASSED_THROUGH:
        options[name] = getattr(settings, name)
    secret = settings.secret_key or settings.personal_api_key
    if secret is not None:
        options["secret_key" if "secret_key" in accepted else "personal_api_key"] = secret
    dropped = sorted(
        name
        for name in options
        if name not in accepted and getattr(settings, name, None) not in (None, False)
    )
    if dropped:
        _logger.warning(
            "the installed posthog-python does not take %s; flag evaluation ignores it",
            ", ".join(dropped),
        )
    return {name: value for name, value in options.items() if name in accepted}


class FlagEvaluator:
    """Owns one posthog-python client, built on first use from a client's settings."""

    def __init__(self, settings: ClientSettings, forward: ForwardEvent) -> None:
        self._settings = settings
        self._forward = forward
        self._client: PosthogClient | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> PosthogClient | None:
        """The posthog-python client, if one was built (never builds one)."""
        return self._client

    def client(self) -> PosthogClient:
        """The posthog-python client; raises :class:`FlagsUnavailableError` without it."""
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                module = load_posthog()
                cls = _forwarding_class(module)
                accepted = inspect.signature(module.Client.__init__).parameters
                options = delegate_options(self._settings, accepted)
                created = cls(self._settings.api_key or "", **options)
                created._posthog_otel_forward = self._forward  # type: ignore[attr-defined]
                self._client = created
            return self._client

    def plain(self, method: str, *args: Any) -> Any:
        """``method(*args)`` of the posthog-python client (no identity involved)."""
        return getattr(self.client(), method)(*args)

    def call(
        self,
        method: str,
        args: tuple[Any, ...],
        distinct_id: Any,
        groups: Mapping[str, Any] | None,
        device_id: str | None,
        **kwargs: Any,
    ) -> Any:
        """``method`` of the posthog-python client, with identity defaulting from the context."""
        client = self.client()
        if distinct_id is None:
            distinct_id = _from_context(get_context_distinct_id(), _identity.DISTINCT_ID)
        if groups is None:
            groups = context_groups()
        if device_id is None:
            device_id = _from_context(get_context_device_id(), _identity.DEVICE_ID)
        return getattr(client, method)(
            *args, distinct_id, groups=groups, device_id=device_id, **kwargs
        )

    def event_properties(
        self,
        distinct_id: str,
        groups: Mapping[str, Any] | None,
        disable_geoip: bool | None,
        send_feature_flags: Any,
        flags: Any,
    ) -> dict[str, Any]:
        """``$feature/<key>`` and ``$active_feature_flags`` for an event, as posthog-python.

        ``flags`` is a snapshot from ``evaluate_flags()`` (it wins); ``send_feature_flags`` is
        True/False or posthog-python's options dict (``only_evaluate_locally``,
        ``person_properties``, ``group_properties``, ``flag_keys_filter``).
        """
        if flags is not None:
            from_snapshot = getattr(flags, "_get_event_properties", None)
            if not callable(from_snapshot):
                raise TypeError(f"flags must come from evaluate_flags(), got {flags!r}")
            return dict(from_snapshot())
        options = _send_options(send_feature_flags)
        if options is None:
            return {}
        client = self.client()
        local = options.get("only_evaluate_locally")
        common: dict[str, Any] = {
            "person_properties": options.get("person_properties"),
            "group_properties": options.get("group_properties"),
            "disable_geoip": disable_geoip,
            "flag_keys_to_evaluate": options.get("flag_keys_filter"),
        }
        if local is True or (local is None and client.feature_flags):
            variants = client.get_all_flags(
                distinct_id, groups=dict(groups or {}), only_evaluate_locally=True, **common
            )
        else:
            variants = client.get_feature_variants(distinct_id, groups, **common)
        props: dict[str, Any] = {
            f"$feature/{key}": value for key, value in (variants or {}).items()
        }
        active = [key for key, value in (variants or {}).items() if value is not False]
        if active:
            props["$active_feature_flags"] = active
        return props

    def shutdown(self) -> None:
        """Stop the posthog-python client's definition poller, if it was built."""
        client = self._client
        if client is not None:
            client.shutdown()


def _send_options(value: Any) -> Mapping[str, Any] | None:
    """posthog-python's ``send_feature_flags``: a bool or an options dict; None: send none."""
    if isinstance(value, bool):
        return {} if value else None
    if isinstance(value, Mapping):
        return value
    raise TypeError(f"send_feature_flags must be True, False or a dict, got {type(value).__name__}")


def _from_context(value: str | None, field: _identity.Field) -> str | None:
    """A scope's value, else the ``posthog.*`` baggage entry other code set (as events do)."""
    if value is not None:
        return value
    entry = otel_baggage.get_baggage(field.attribute)
    return entry if isinstance(entry, str) else None


def context_groups() -> dict[str, Any] | None:
    """The current context's ``$groups`` tag, when it is a mapping."""
    scope = current_scope()
    resolved = scope.resolve() if scope is not None else None
    groups = resolved.tags.get("$groups") if resolved is not None else None
    return dict(groups) if isinstance(groups, Mapping) else None


def flag_event_refiner(
    kwargs: Mapping[str, Any],
) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """The last step posthog-python applies to a flag event's finished properties.

    Its config version 2 events pin their attribution after super properties are merged,
    and a minimal ``$feature_flag_called`` keeps only an allowlist; ``kwargs`` are what its
    client passed to ``capture`` for the event.
    """
    pinned = kwargs.get("_pinned_properties")
    allowlist = kwargs.get("_property_allowlist")
    apply = getattr(pinned, "apply", None)
    if not callable(apply) and allowlist is None:
        return None

    def refine(props: dict[str, Any]) -> dict[str, Any]:
        if callable(apply):
            props = dict(apply(props))
        if allowlist is not None:
            props = {key: value for key, value in props.items() if key in allowlist}
        return props

    return refine


def personless_id() -> str:
    """A random distinct id for an event without one (posthog-python does the same)."""
    return str(uuid_module.uuid4())
