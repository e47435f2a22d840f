"""The client's constructor parameters: posthog-python's, in its order, then ours.

posthog-otel's :class:`~posthog_otel.Client` accepts every parameter posthog-python 7.x's
``Client`` accepts, by the same name and position, so existing ``Posthog(...)`` calls keep
working. Each is either implemented (it becomes a field of
:class:`~posthog_otel.config.ClientSettings`) or accepted and, when given a value other than
posthog-python's default, warned about once per process with what it would have done.

Usage::

    bound = bind_client_arguments(args, kwargs)         # TypeError like any Python call
    settings_options, ignored = split_options(bound)    # ignored: names warned about
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

from .config import CLIENT_OPTIONS

__all__ = [
    "CLIENT_SIGNATURE",
    "NOT_IMPLEMENTED",
    "POSTHOG_PYTHON_PARAMETERS",
    "bind_client_arguments",
    "split_options",
]

_logger = logging.getLogger("posthog.otel")

# posthog-python 7.x ``Client.__init__`` parameters and defaults, in order (after ``self``).
POSTHOG_PYTHON_PARAMETERS: tuple[tuple[str, Any], ...] = (
    ("project_api_key", None),
    ("host", None),
    ("debug", False),
    ("max_queue_size", 10000),
    ("send", True),
    ("on_error", None),
    ("flush_at", 100),
    ("flush_interval", 0.5),  # posthog-python: 5.0
    ("gzip", True),  # posthog-python: False
    ("max_retries", 3),
    ("sync_mode", False),
    ("timeout", 15),
    ("thread", 1),
    ("poll_interval", 30),
    ("personal_api_key", None),
    ("disabled", False),
    ("disable_geoip", True),
    ("is_server", True),
    ("historical_migration", False),
    ("feature_flags_request_timeout_seconds", 3),
    ("feature_flags_request_max_retries", 1),
    ("super_properties", None),
    ("enable_exception_autocapture", True),  # posthog-python: False
    ("log_captured_exceptions", False),
    ("project_root", None),
    ("privacy_mode", False),
    ("before_send", None),
    ("flag_fallback_cache_url", None),
    ("enable_local_evaluation", True),
    ("flag_definition_cache_provider", None),
    ("capture_exception_code_variables", False),
    ("code_variables_mask_patterns", None),
    ("code_variables_ignore_patterns", None),
    ("code_variables_mask_url_credentials", None),
    ("code_variables_detect_secrets", None),
    ("in_app_modules", None),
    ("enable_exception_autocapture_rate_limiting", False),
    ("exception_autocapture_bucket_size", 50),
    ("exception_autocapture_refill_rate", 10),
    ("exception_autocapture_refill_interval_seconds", 10),
    ("capture_mode", None),
    ("capture_compression", None),
    ("secret_key", None),
    ("metrics", None),
    ("enable_full_ai_capture", False),
    ("capture_trace_context", False),
    ("_use_ai_lane", False),
    ("_enable_multimodal_capture", False),
    ("traces", None),
    ("app_host", None),
    ("email_request_timeout_seconds", 15),
    ("email_request_max_retries", 2),
    ("migrated_from", None),
)

# Accepted for compatibility, not implemented: what a non-default value would have done.
NOT_IMPLEMENTED: dict[str, str] = {
    "thread": "more sender threads (posthog-otel sends from one thread)",
    "capture_exception_code_variables": "local variable values on exception frames",
    "code_variables_mask_patterns": "local variable values on exception frames",
    "code_variables_ignore_patterns": "local variable values on exception frames",
    "code_variables_mask_url_credentials": "local variable values on exception frames",
    "code_variables_detect_secrets": "local variable values on exception frames",
    "enable_exception_autocapture_rate_limiting": "rate limiting of autocaptured exceptions",
    "exception_autocapture_bucket_size": "rate limiting of autocaptured exceptions",
    "exception_autocapture_refill_rate": "rate limiting of autocaptured exceptions",
    "exception_autocapture_refill_interval_seconds": "rate limiting of autocaptured exceptions",
    "capture_mode": "the v1 capture endpoint (posthog-otel posts to /batch/)",
    "capture_compression": "v1 request compression (use gzip=)",
    "metrics": "the metrics API (use OpenTelemetry metrics)",
    "enable_full_ai_capture": "LLM analytics capture",
    "_use_ai_lane": "LLM analytics capture",
    "_enable_multimodal_capture": "LLM analytics capture",
    "capture_trace_context": "nothing: posthog-otel always adds $trace_id/$span_id in a span",
    "app_host": "session replay links",
    "email_request_timeout_seconds": "the emails API",
    "email_request_max_retries": "the emails API",
    "migrated_from": "nothing",
}

_DEFAULTS = dict(POSTHOG_PYTHON_PARAMETERS)
_warned: set[str] = set()


def _signature() -> inspect.Signature:
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("self", positional)]
    params += [inspect.Parameter(name, positional, default=d) for name, d in POSTHOG_PYTHON_PARAMETERS]
    ours = sorted(CLIENT_OPTIONS - set(_DEFAULTS))
    params += [inspect.Parameter(name, keyword, default=None) for name in ("api_key", "transport")]
    params += [inspect.Parameter(name, keyword, default=None) for name in ours]
    return inspect.Signature(params)


CLIENT_SIGNATURE = _signature()


def bind_client_arguments(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of a ``Client(...)`` call by name (only those given); TypeError as Python."""
    bound = CLIENT_SIGNATURE.bind(None, *args, **kwargs)
    given = dict(bound.arguments)
    given.pop("self", None)
    return given


def split_options(given: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Options for :class:`ClientSettings`, and the names accepted but not implemented.

    An unimplemented option given a value other than posthog-python's default is logged once
    per process, naming what it would have done.
    """
    settings: dict[str, Any] = {}
    ignored: list[str] = []
    for name, value in given.items():
        if name in CLIENT_OPTIONS:
            if value is not None:
                settings[name] = value
            continue
        if name in NOT_IMPLEMENTED:
            if value is None or value == _DEFAULTS.get(name):
                continue
            ignored.append(name)
            if name not in _warned:
                _warned.add(name)
                _logger.warning(
                    "posthog-otel accepts %s= for compatibility but does not implement it "
                    "(%s); it has no effect",
                    name,
                    NOT_IMPLEMENTED[name],
                )
    return settings, ignored
