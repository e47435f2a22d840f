"""posthog-python functions posthog-otel accepts so existing code runs, but does not implement.

Each call is a no-op that logs once per process what it would have done, so moving from
``import posthog`` never breaks on them. They are listed in the README's "Differences from
posthog-python".

Usage::

    import posthog_otel as posthog

    posthog.set_capture_exception_code_variables_context(True)   # logged once, no effect
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = [
    "disable_connection_reuse",
    "enable_keep_alive",
    "set_capture_exception_code_variables_context",
    "set_code_variables_detect_secrets_context",
    "set_code_variables_ignore_patterns_context",
    "set_code_variables_mask_patterns_context",
    "set_code_variables_mask_url_credentials_context",
    "set_socket_options",
]

_logger = logging.getLogger("posthog.otel")
_warned: set[str] = set()


def _not_implemented(name: str, what: str) -> None:
    if name in _warned:
        return
    _warned.add(name)
    _logger.warning("posthog-otel accepts %s() for compatibility; %s is not implemented", name, what)


def set_capture_exception_code_variables_context(enabled: bool) -> None:
    _not_implemented("set_capture_exception_code_variables_context", "capturing local variables")


def set_code_variables_mask_patterns_context(mask_patterns: list[str]) -> None:
    _not_implemented("set_code_variables_mask_patterns_context", "capturing local variables")


def set_code_variables_ignore_patterns_context(ignore_patterns: list[str]) -> None:
    _not_implemented("set_code_variables_ignore_patterns_context", "capturing local variables")


def set_code_variables_mask_url_credentials_context(enabled: bool) -> None:
    _not_implemented(
        "set_code_variables_mask_url_credentials_context", "capturing local variables"
    )


def set_code_variables_detect_secrets_context(enabled: bool) -> None:
    _not_implemented("set_code_variables_detect_secrets_context", "capturing local variables")


def set_socket_options(socket_options: Any) -> None:
    _not_implemented("set_socket_options", "tuning the HTTP connection's sockets")


def disable_connection_reuse() -> None:
    _not_implemented("disable_connection_reuse", "switching HTTP keep-alive")


def enable_keep_alive() -> None:
    _not_implemented("enable_keep_alive", "switching HTTP keep-alive")
