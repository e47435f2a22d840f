"""One validated settings object for the client, built from arguments and the environment.

Every option is checked here, at construction, so nothing invalid is discovered later on a
background thread. Option names follow posthog-python where it has them.

Usage::

    settings = ClientSettings.build(api_key="phc_...", flush_at=50)
    settings = ClientSettings.build()          # POSTHOG_API_KEY / POSTHOG_HOST from the env

Environment (used only when the argument is not given): ``POSTHOG_API_KEY`` or
``POSTHOG_PROJECT_API_KEY``, ``POSTHOG_HOST``, ``POSTHOG_DISABLED``, ``POSTHOG_DEBUG``.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import logging
import os
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "CLIENT_OPTIONS",
    "DEFAULT_HOST",
    "ClientSettings",
    "logging_level",
    "name_matcher",
    "name_patterns",
    "normalize_host",
]

DEFAULT_HOST = "https://us.i.posthog.com"

_config_logger = logging.getLogger("posthog.otel")

_HOST_ALIASES = {
    "https://app.posthog.com": "https://us.i.posthog.com",
    "https://us.posthog.com": "https://us.i.posthog.com",
    "https://eu.posthog.com": "https://eu.i.posthog.com",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def normalize_host(host: str) -> str:
    """Strip whitespace and one trailing ``/``; map PostHog app hosts to ingestion hosts.

    A host typed without a scheme (``127.0.0.1:8010``, ``eu.i.posthog.com``) gets ``http://``
    when it names this machine (``localhost``, ``*.localhost``, ``127.0.0.0/8``, ``::1``) and
    ``https://`` otherwise. Anything else that is not an http(s) URL raises ``ValueError``.
    """
    cleaned = host.strip()
    if cleaned.endswith("/"):
        cleaned = cleaned[:-1]
    if cleaned and ":/" not in cleaned:
        cleaned = f"{'http' if _is_loopback(cleaned) else 'https'}://{cleaned}"
    if not cleaned.startswith(("http://", "https://")) or not _has_hostname(cleaned):
        raise ValueError(f"host must be an http:// or https:// URL, got {host!r}")
    return _HOST_ALIASES.get(cleaned, cleaned)


def _has_hostname(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return bool(parts.hostname) and not any(c.isspace() for c in url)


def _is_loopback(authority: str) -> bool:
    """Does ``host[:port][/path]`` (no scheme) name this machine?"""
    try:
        name = urllib.parse.urlsplit(f"//{authority}").hostname or ""
    except ValueError:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def name_patterns(value: Any, option: str) -> tuple[str, ...]:
    """Validate a list of names or fnmatch patterns (a string: comma-separated)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, Mapping) or not isinstance(value, Sequence | set | frozenset):
        raise ValueError(f"{option} must be a list of names or patterns, got {value!r}")
    names: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"{option} must contain strings, got {item!r}")
        if item.strip():
            names.append(item.strip())
    return tuple(names)


def name_matcher(patterns: Sequence[str]) -> Callable[[str], bool] | None:
    """A predicate: does a key match one of ``patterns`` (exact or fnmatch, any case)?

    None when there are no patterns. Decisions are cached (keys repeat: tag and property
    names).
    """
    if not patterns:
        return None
    exact = frozenset(p.lower() for p in patterns if not any(c in p for c in "*?["))
    globs = tuple(p.lower() for p in patterns if any(c in p for c in "*?["))
    cache: dict[str, bool] = {}

    def matches(key: str) -> bool:
        found = cache.get(key)
        if found is None:
            lowered = str(key).lower()
            found = lowered in exact or any(fnmatch.fnmatchcase(lowered, g) for g in globs)
            if len(cache) < 4096:
                cache[key] = found
        return found

    return matches


def logging_level(value: Any, option: str) -> int:
    """A ``logging`` level from a number or a name (``"info"``, ``"WARNING"``, ``"30"``)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        number = logging.getLevelName(text.upper())
        if isinstance(number, int):
            return number
    raise ValueError(
        f"{option} must be a logging level (DEBUG, INFO, ... or a number), got {value!r}"
    )


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool | None:
    """Read a boolean environment variable; None when unset; ValueError when unreadable."""
    raw = (os.environ if environ is None else environ).get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class ClientSettings:
    """Validated options of :class:`posthog_otel.Client`. See the README for each option."""

    api_key: str | None = None
    host: str | None = None
    flush_at: int = 100
    flush_interval: float = 0.5
    max_queue_size: int = 10_000
    max_queue_bytes: int = 64 * 1024 * 1024
    gzip: bool = True
    max_retries: int = 3
    timeout: float = 15.0
    disabled: bool = False
    debug: bool = False
    sync_mode: bool = False
    before_send: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    on_error: Callable[[Exception, list[dict[str, Any]]], None] | None = None
    super_properties: Mapping[str, Any] | None = None
    enable_exception_autocapture: bool = True
    project_root: str | None = None
    in_app_modules: tuple[str, ...] = ()
    disable_geoip: bool = True
    historical_migration: bool = False
    shutdown_timeout: float = 5.0
    max_batch_bytes: int = 5 * 1024 * 1024
    max_event_bytes: int = 900 * 1024
    exclude_properties: tuple[str, ...] = ()
    send: bool = True
    is_server: bool = True
    log_captured_exceptions: bool = False
    # -- LLM analytics from GenAI spans (see posthog_otel.spans.genai) --------------------
    capture_ai_spans: bool = True  # not "capture_ai": that is the module function
    ai_privacy_mode: bool = False
    privacy_mode: bool = False  # posthog-python's name for ai_privacy_mode
    ai_max_content_bytes: int = 256 * 1024
    # -- feature flags (evaluated by posthog-python, see posthog_otel.flags) --------------
    personal_api_key: str | None = None
    secret_key: str | None = None
    poll_interval: float = 30.0
    feature_flags_request_timeout_seconds: float = 3.0
    feature_flags_request_max_retries: int = 1
    enable_local_evaluation: bool = True
    flag_fallback_cache_url: str | None = None
    flag_definition_cache_provider: Any = None
    # -- spans to PostHog's /i/v1/traces (posthog-python's keys, see posthog_otel.tracing) --
    traces: Any = None

    def __repr__(self) -> str:  # never show the project key
        shown = "set" if self.api_key else "unset"
        return f"ClientSettings(api_key=<{shown}>, host={self.host!r}, disabled={self.disabled})"

    @property
    def ai_privacy(self) -> bool:
        """Leave prompts, outputs and tool arguments out of AI events."""
        return self.ai_privacy_mode or self.privacy_mode

    @property
    def endpoint(self) -> str:
        return f"{self.host or DEFAULT_HOST}/batch/"

    @classmethod
    def build(
        cls,
        api_key: str | None = None,
        host: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        strict: bool = True,
        **options: Any,
    ) -> ClientSettings:
        """Validate ``options`` and fill the rest from the environment.

        ``strict``: an invalid value raises ``ValueError`` naming the option. Not strict (how
        :class:`~posthog_otel.Client` builds its settings, since posthog-python accepts any
        value): the invalid option is logged once and its default used instead.
        """
        env = os.environ if environ is None else environ
        unknown = sorted(set(options) - CLIENT_OPTIONS)
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(unknown)}")

        if api_key is None:
            api_key = env.get("POSTHOG_API_KEY") or env.get("POSTHOG_PROJECT_API_KEY") or None
        if api_key is not None:
            if not isinstance(api_key, str):
                raise ValueError("api_key must be a string")
            api_key = api_key.strip() or None
        if host is None:
            host = env.get("POSTHOG_HOST") or None
        if host is not None:
            if not isinstance(host, str):
                raise ValueError("host must be a string")
            host = normalize_host(host)
        for flag, variable in (("disabled", "POSTHOG_DISABLED"), ("debug", "POSTHOG_DEBUG")):
            if flag not in options:
                options[flag] = env_flag(variable, env) or False
        for flag, variable in (
            ("capture_ai_spans", "POSTHOG_OTEL_CAPTURE_AI"),
            ("ai_privacy_mode", "POSTHOG_OTEL_AI_PRIVACY_MODE"),
        ):
            if options.get(flag) is None:
                options.pop(flag, None)
                value = env_flag(variable, env)
                if value is not None:
                    options[flag] = value

        checked: dict[str, Any] = {}
        for name, value in options.items():
            try:
                checked[name] = _CHECKS.get(name, _unchecked)(name, value)
            except ValueError as error:
                if strict:
                    raise
                _config_logger.warning("posthog-otel: %s; the default is used instead", error)
        return cls(api_key=api_key, host=host, **checked)


def _unchecked(name: str, value: Any) -> Any:
    return value


def _integer(low: int, high: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
        return value

    return check


def _number(low: float, high: float) -> Callable[[str, Any], float]:
    def check(name: str, value: Any) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise ValueError(f"{name} must be a number from {low} to {high}, got {value!r}")
        return float(value)

    return check


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _callable(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be callable, got {type(value).__name__}")
    return value


def _mapping(name: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping, got {type(value).__name__}")
    return dict(value)


def _path(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"{name} must be a path, got {value!r}")
    return os.path.abspath(os.fspath(value))


def _optional_text(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value.strip() or None if isinstance(value, str) else None


def _module_names(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a list of module names")
    names = tuple(value)
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{name} must contain non-empty module names")
    return names


def _traces(name: str, value: Any) -> Any:
    """None/False: off; True: every default; a dict: posthog-python's ``traces`` keys."""
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be True or a dict of traces options, got {value!r}")
    return dict(value)


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    # posthog-python accepts any batch size; a batch is also bounded by max_batch_bytes
    "flush_at": _integer(1, 10_000_000),
    "flush_interval": _number(0.001, 3600.0),
    "max_queue_size": _integer(1, 10_000_000),
    "max_queue_bytes": _integer(1024, 64 * 1024 * 1024 * 1024),
    "max_retries": _integer(0, 20),
    "timeout": _number(0.001, 600.0),
    "shutdown_timeout": _number(0.0, 600.0),
    "max_batch_bytes": _integer(1024, 20 * 1024 * 1024),
    "max_event_bytes": _integer(256, 20 * 1024 * 1024),
    "before_send": _callable,
    "on_error": _callable,
    "super_properties": _mapping,
    "project_root": _path,
    "in_app_modules": _module_names,
    "exclude_properties": lambda name, value: name_patterns(value, name),
    "ai_max_content_bytes": _integer(256, 20 * 1024 * 1024),
    # feature flags (evaluated by posthog-python, see posthog_otel.flags)
    "personal_api_key": _optional_text,
    "secret_key": _optional_text,
    "flag_fallback_cache_url": _optional_text,
    "poll_interval": _number(0.001, 86_400.0),
    "feature_flags_request_timeout_seconds": _number(0.001, 600.0),
    "feature_flags_request_max_retries": _integer(0, 20),
    "enable_local_evaluation": _boolean,
    "traces": _traces,
    **{
        name: _boolean
        for name in (
            "gzip",
            "send",
            "disabled",
            "debug",
            "sync_mode",
            "is_server",
            "enable_exception_autocapture",
            "log_captured_exceptions",
            "disable_geoip",
            "historical_migration",
            "capture_ai_spans",
            "ai_privacy_mode",
            "privacy_mode",
        )
    },
}


CLIENT_OPTIONS: frozenset[str] = frozenset(
    field.name for field in fields(ClientSettings) if field.name not in ("api_key", "host")
)
"""Option names a :class:`~posthog_otel.Client` takes besides ``api_key`` and ``host``."""
