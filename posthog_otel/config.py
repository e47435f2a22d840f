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
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "CLIENT_OPTIONS",
    "DEFAULT_HOST",
    "ClientSettings",
    "name_matcher",
    "name_patterns",
    "normalize_host",
]

DEFAULT_HOST = "https://us.i.posthog.com"

_HOST_ALIASES = {
    "https://app.posthog.com": "https://us.i.posthog.com",
    "https://us.posthog.com": "https://us.i.posthog.com",
    "https://eu.posthog.com": "https://eu.i.posthog.com",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def normalize_host(host: str) -> str:
    """Strip whitespace and one trailing ``/``; map PostHog app hosts to ingestion hosts."""
    cleaned = host.strip()
    if cleaned.endswith("/"):
        cleaned = cleaned[:-1]
    if not cleaned.startswith(("http://", "https://")):
        raise ValueError(f"host must start with http:// or https://, got {host!r}")
    return _HOST_ALIASES.get(cleaned, cleaned)


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

    def __repr__(self) -> str:  # never show the project key
        shown = "set" if self.api_key else "unset"
        return f"ClientSettings(api_key=<{shown}>, host={self.host!r}, disabled={self.disabled})"

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
        **options: Any,
    ) -> ClientSettings:
        """Validate ``options`` (raising ``ValueError`` naming the option) and fill from env."""
        env = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)} - {"api_key", "host"}
        unknown = sorted(set(options) - known)
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
        if "disabled" not in options:
            options["disabled"] = env_flag("POSTHOG_DISABLED", env) or False
        if "debug" not in options:
            options["debug"] = env_flag("POSTHOG_DEBUG", env) or False

        _check_int(options, "flush_at", 1, 10_000)
        _check_number(options, "flush_interval", 0.001, 3600.0)
        _check_int(options, "max_queue_size", 1, 10_000_000)
        _check_int(options, "max_queue_bytes", 1024, 64 * 1024 * 1024 * 1024)
        _check_int(options, "max_retries", 0, 20)
        _check_number(options, "timeout", 0.001, 600.0)
        _check_number(options, "shutdown_timeout", 0.0, 600.0)
        _check_int(options, "max_batch_bytes", 1024, 20 * 1024 * 1024)
        _check_int(options, "max_event_bytes", 256, 20 * 1024 * 1024)
        for name in (
            "gzip",
            "disabled",
            "debug",
            "sync_mode",
            "enable_exception_autocapture",
            "disable_geoip",
            "historical_migration",
        ):
            if name in options and not isinstance(options[name], bool):
                raise ValueError(f"{name} must be True or False, got {options[name]!r}")
        for name in ("before_send", "on_error"):
            if options.get(name) is not None and not callable(options[name]):
                raise ValueError(f"{name} must be callable")
        props = options.get("super_properties")
        if props is not None:
            if not isinstance(props, Mapping):
                raise ValueError("super_properties must be a mapping")
            options["super_properties"] = dict(props)
        root = options.get("project_root")
        if root is not None:
            if not isinstance(root, str | os.PathLike):
                raise ValueError("project_root must be a path")
            options["project_root"] = os.path.abspath(os.fspath(root))
        modules = options.get("in_app_modules")
        if modules is not None:
            options["in_app_modules"] = _check_names(modules)
        if "exclude_properties" in options:
            options["exclude_properties"] = name_patterns(
                options["exclude_properties"], "exclude_properties"
            )
        return cls(api_key=api_key, host=host, **options)


def _check_int(options: dict[str, Any], name: str, low: int, high: int) -> None:
    if name not in options:
        return
    value = options[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")


def _check_number(options: dict[str, Any], name: str, low: float, high: float) -> None:
    if name not in options:
        return
    value = options[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be a number from {low} to {high}, got {value!r}")
    options[name] = float(value)


def _check_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError("in_app_modules must be a list of module names")
    names = tuple(value)
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError("in_app_modules must contain non-empty module names")
    return names


CLIENT_OPTIONS: frozenset[str] = frozenset(
    field.name for field in fields(ClientSettings) if field.name not in ("api_key", "host")
)
"""Option names a :class:`~posthog_otel.Client` takes besides ``api_key`` and ``host``."""
