"""The bridge's options, validated once, and carried to uvicorn's worker processes.

Usage::

    settings = BridgeSettings.build(api_key="phc_...", capture_spans="roots", log_level="ERROR")
    os.environ[SETTINGS_ENV] = settings.to_json()      # what `--workers N` workers read
    same = BridgeSettings.from_json(os.environ[SETTINGS_ENV])

Environment used when an option is not given: ``POSTHOG_API_KEY`` (or
``POSTHOG_PROJECT_API_KEY``), ``POSTHOG_HOST``, ``POSTHOG_OTEL_CAPTURE_SPANS``,
``POSTHOG_OTEL_GENAI_LOG_WAIT`` (seconds a generation waits for content log records sent after
its span, :mod:`posthog_otel.bridge.genai_wait`; 0 turns the wait off).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..config import normalize_host
from ..spans.mapping import CAPTURE_MODES
from .genai_wait import DEFAULT_WAIT_SECONDS

__all__ = ["SETTINGS_ENV", "BridgeSettings", "parse_level", "parse_required_header"]

SETTINGS_ENV = "POSTHOG_OTEL_BRIDGE_SETTINGS"

MIB = 1024 * 1024

# OTLP SeverityNumber ranges: TRACE 1-4, DEBUG 5-8, INFO 9-12, WARN 13-16, ERROR 17-20, FATAL 21-24
_LEVELS = {
    "TRACE": 1,
    "DEBUG": 5,
    "INFO": 9,
    "WARN": 13,
    "WARNING": 13,
    "ERROR": 17,
    "FATAL": 21,
    "CRITICAL": 21,
}


def parse_level(value: str | int) -> int:
    """A level name (``ERROR``, ``warn``, …) or an OTLP severity number (1-24) as a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip().upper()
        if text in _LEVELS:
            return _LEVELS[text]
        try:
            number = int(text)
        except ValueError:
            raise ValueError(
                f"log level must be one of {', '.join(_LEVELS)} or 1-24, got {value!r}"
            ) from None
    if not 1 <= number <= 24:
        raise ValueError(f"log severity number must be from 1 to 24, got {number}")
    return number


def parse_required_header(text: str) -> tuple[str, str]:
    """``'Authorization=Bearer abc'`` (or ``'Authorization: Bearer abc'``) -> (name, value)."""
    equals, colon = text.find("="), text.find(":")
    cut = min(i for i in (equals, colon) if i >= 0) if max(equals, colon) >= 0 else -1
    if cut <= 0:
        raise ValueError(f"--require-header must look like 'Name=value', got {text!r}")
    name, value = text[:cut].strip().lower(), text[cut + 1 :].strip()
    if not name or not all(c.isalnum() or c in "-_" for c in name) or not value:
        raise ValueError(f"--require-header must look like 'Name=value', got {text!r}")
    return name, value


@dataclass(frozen=True)
class BridgeSettings:
    """Validated options of ``posthog-otel bridge``; see :meth:`build` for the defaults."""

    api_key: str | None = None
    posthog_host: str | None = None
    host: str = "127.0.0.1"
    port: int = 4318
    workers: int = 1
    capture_spans: str = "roots"
    log_level: int = 17  # ERROR
    max_body_bytes: int = 64 * MIB
    max_inflight_bytes: int = 128 * MIB
    max_attributes: int = 128
    max_queue_size: int = 100_000
    max_queue_bytes: int = 64 * MIB
    body_timeout: float = 30.0
    header_timeout: float = 10.0
    flush_at: int = 1000
    retry_after: int = 2
    max_retries: int = 10
    shutdown_timeout: float = 10.0
    genai_log_wait: float = DEFAULT_WAIT_SECONDS
    require_headers: tuple[tuple[str, str], ...] = ()
    key_from_request: bool = False
    max_projects: int = 16
    verbose: bool = False

    def __repr__(self) -> str:  # never show the project key or required header values
        return (
            f"BridgeSettings(api_key=<{'set' if self.api_key else 'unset'}>, "
            f"posthog_host={self.posthog_host!r}, host={self.host!r}, port={self.port}, "
            f"workers={self.workers}, capture_spans={self.capture_spans!r}, "
            f"require_headers={[name for name, _ in self.require_headers]})"
        )

    @classmethod
    def build(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        require_headers: Sequence[str | tuple[str, str]] = (),
        log_level: str | int = "ERROR",
        **options: Any,
    ) -> BridgeSettings:
        """Validate ``options`` (``ValueError`` naming the option) and fill from the env."""
        env = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)} - {"require_headers", "log_level"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(unknown)}")
        values = {k: v for k, v in options.items() if v is not None}
        api_key = values.get("api_key") or env.get("POSTHOG_API_KEY")
        api_key = api_key or env.get("POSTHOG_PROJECT_API_KEY") or None
        values["api_key"] = (api_key.strip() or None) if isinstance(api_key, str) else None
        host = values.get("posthog_host") or env.get("POSTHOG_HOST") or None
        values["posthog_host"] = normalize_host(host) if host else None
        mode = values.get("capture_spans") or env.get("POSTHOG_OTEL_CAPTURE_SPANS", "").strip()
        values["capture_spans"] = mode or "roots"
        if values["capture_spans"] not in CAPTURE_MODES:
            raise ValueError(
                f"capture_spans must be one of {', '.join(CAPTURE_MODES)}, "
                f"got {values['capture_spans']!r}"
            )
        values["log_level"] = parse_level(log_level)
        if (
            values.get("genai_log_wait") is None
            and env.get("POSTHOG_OTEL_GENAI_LOG_WAIT", "").strip()
        ):
            text = env["POSTHOG_OTEL_GENAI_LOG_WAIT"].strip()
            try:
                values["genai_log_wait"] = float(text)
            except ValueError:
                raise ValueError(
                    f"POSTHOG_OTEL_GENAI_LOG_WAIT must be a number of seconds, got {text!r}"
                ) from None
        values["require_headers"] = tuple(
            item if isinstance(item, tuple) else parse_required_header(item)
            for item in require_headers
        )
        for name, low, high in (
            ("port", 0, 65535),
            ("workers", 1, 256),
            ("max_body_bytes", 1024, 4096 * MIB),
            ("max_inflight_bytes", 1024, 64 * 1024 * MIB),
            ("max_attributes", 1, 100_000),
            ("max_queue_size", 1, 10_000_000),
            ("max_queue_bytes", 1024, 64 * 1024 * MIB),
            ("flush_at", 1, 10_000),
            ("retry_after", 1, 3600),
            ("max_retries", 0, 1000),
            ("max_projects", 1, 10_000),
        ):
            value = values.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
            ):
                raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
        limits: tuple[tuple[str, float, float], ...] = (
            ("shutdown_timeout", 0.0, 600),
            ("body_timeout", 0.1, 600),
            ("header_timeout", 0.1, 600),
            ("genai_log_wait", 0.0, 60),
        )
        for name, low_time, high_time in limits:
            timeout = values.get(name)
            if timeout is not None:
                if isinstance(timeout, bool) or not isinstance(timeout, int | float):
                    raise ValueError(f"{name} must be a number, got {timeout!r}")
                if not low_time <= timeout <= high_time:
                    raise ValueError(
                        f"{name} must be from {low_time:g} to {high_time:g}, got {timeout!r}"
                    )
                values[name] = float(timeout)
        settings = cls(**values)
        if settings.max_inflight_bytes < settings.max_body_bytes:
            raise ValueError("max_inflight_bytes must be at least max_body_bytes")
        return settings

    def client_options(self) -> dict[str, Any]:
        """Options for each :class:`~posthog_otel.client.Client` the bridge sends through."""
        return {
            "flush_at": self.flush_at,
            "max_queue_size": self.max_queue_size,
            "max_queue_bytes": self.max_queue_bytes,
            "shutdown_timeout": self.shutdown_timeout,
            "max_retries": self.max_retries,
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BridgeSettings:
        data = json.loads(text)
        data["require_headers"] = tuple(tuple(pair) for pair in data.get("require_headers", ()))
        return cls(**data)
