"""What PostHog's LLM analytics expects per provider and per HTTP call, from GenAI spans:
``$ai_http_status``, ``$ai_base_url``, ``$ai_lib``, and the provider's own shapes where the
semantic conventions normalise them away. For :mod:`posthog_otel.spans.genai`.

Usage::

    props["$ai_http_status"] = http_status(attributes, props, span_events)
    props["$ai_stop_reason"] = stop_reason("tool_call", "anthropic")     # "tool_use"
    in_provider_shape(props)   # token counts and tool-call arguments as the provider reports

Provider shapes (what posthog-python's own wrappers send, checked by the integration tests):

* OpenAI: the conventions' ``tool_call`` finish reason is ``tool_calls``; tool-call arguments
  are JSON text.
* Anthropic: finish reasons are Anthropic's (``end_turn``, ``tool_use``, ``max_tokens``);
  ``$ai_input_tokens`` excludes cache reads and writes (the conventions' input count includes
  them, Anthropic's does not, and PostHog prices the cache counts separately); tool-call
  arguments are objects; tool definitions stay flat (``name``, ``description``,
  ``input_schema``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..version import __version__
from .genai_content import json_value, number

__all__ = [
    "LIB_PROPERTIES",
    "error_summary",
    "http_status",
    "in_provider_shape",
    "server_base_url",
    "stop_reason",
]

# $ai_http_status: the response status the span records, else the one an error names
_STATUS_ATTRIBUTES = ("http.response.status_code", "http.status_code")
_STATUS_IN_TEXT = re.compile(r"\b(?:Error code|status(?: code)?|HTTP)[:= ]+([1-5]\d\d)\b", re.I)
# the error classes of the openai and anthropic SDKs (same names in both)
_STATUS_OF_ERROR = {
    "BadRequestError": 400,
    "AuthenticationError": 401,
    "PermissionDeniedError": 403,
    "NotFoundError": 404,
    "ConflictError": 409,
    "UnprocessableEntityError": 422,
    "RateLimitError": 429,
    "InternalServerError": 500,
}
_ERROR_CLASS = re.compile(r"([A-Za-z]+Error)\b")
LIB_PROPERTIES = {"$ai_lib": "posthog-otel", "$ai_lib_version": __version__}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_STOP_REASONS = {
    "openai": {"tool_call": "tool_calls"},
    "anthropic": {"stop": "end_turn", "tool_call": "tool_use", "length": "max_tokens"},
}
_CACHE_COUNTS = ("$ai_cache_read_input_tokens", "$ai_cache_creation_input_tokens")


def stop_reason(reason: str, provider: Any) -> str:
    """The conventions' finish reason in the provider's own words."""
    return _STOP_REASONS.get(str(provider), {}).get(reason, reason)


def in_provider_shape(props: dict[str, Any]) -> None:
    """Token counts and tool-call arguments as the provider reports them (see the module)."""
    if props.get("$ai_provider") != "anthropic":
        return
    total = props.get("$ai_input_tokens")
    if isinstance(total, int) and not isinstance(total, bool):
        cached = sum(props.get(key) or 0 for key in _CACHE_COUNTS)
        if 0 < cached <= total:
            props["$ai_input_tokens"] = total - cached
    tools = props.get("$ai_tools")
    if isinstance(tools, list):  # Anthropic's flat definitions: name, description, input_schema
        props["$ai_tools"] = [_flat_tool(tool) for tool in tools]
    for key in ("$ai_output_choices", "$ai_input"):
        messages = props.get(key)
        if isinstance(messages, list):
            for message in messages:
                _object_arguments(message)


def _flat_tool(tool: Any) -> Any:
    function = tool.get("function") if isinstance(tool, dict) else None
    if isinstance(function, dict) and "input_schema" in function:
        return function
    return tool


def _object_arguments(message: Any) -> None:
    if not isinstance(message, dict):
        return
    blocks = message.get("content")
    tool_calls = message.get("tool_calls")
    calls = [
        *(blocks if isinstance(blocks, list) else ()),
        *(tool_calls if isinstance(tool_calls, list | tuple) else ()),
    ]
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            function["arguments"] = json_value(function["arguments"])


def http_status(
    attributes: Mapping[str, Any], props: Mapping[str, Any], events: Sequence[Any]
) -> int | None:
    """The model call's HTTP status: recorded on the span, else named by its error (the SDKs'
    ``Error code: 429`` messages, a numeric ``error.type``, the SDKs' error class names), else
    200 for a call that did not fail; None for a failure whose status nothing names."""
    for key in _STATUS_ATTRIBUTES:
        recorded = attributes.get(key)
        if recorded is not None:
            status = number(recorded)
            if isinstance(status, int) and 100 <= status <= 599:
                return status
    if not props.get("$ai_is_error"):
        return 200
    error_type = str(attributes.get("error.type") or "")
    if error_type.isdigit() and 100 <= int(error_type) <= 599:
        return int(error_type)
    texts = [str(props.get("$ai_error") or "")]
    types = [error_type]
    for event in events:
        if event.name == "exception":
            data = event.attributes or {}
            texts.append(str(data.get("exception.message") or ""))
            types.append(str(data.get("exception.type") or ""))
    for text in texts:
        found = _STATUS_IN_TEXT.search(text)
        if found:
            return int(found.group(1))
    for text in (*types, *texts):
        for name in _ERROR_CLASS.findall(text):
            if name in _STATUS_OF_ERROR:
                return _STATUS_OF_ERROR[name]
    return None


def server_base_url(attributes: Mapping[str, Any]) -> str | None:
    """``scheme://host[:port]`` from ``server.address``/``server.port`` (the conventions record
    no path; the scheme is ``url.scheme``, else http for a loopback host, else https)."""
    host = attributes.get("server.address")
    if not isinstance(host, str) or not host:
        return None
    scheme = attributes.get("url.scheme")
    if not isinstance(scheme, str) or not scheme:
        loopback = host in ("localhost", "::1") or host.startswith("127.")
        scheme = "http" if loopback else "https"
    port = number(attributes.get("server.port"))
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    if isinstance(port, int) and port != _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def error_summary(attributes: Mapping[str, Any], events: Sequence[Any], status: int | None) -> str:
    """``$ai_error`` in privacy mode: the error's class name and HTTP status only
    (``RateLimitError: 429``), as posthog-python summarises it; error messages often echo the
    prompt or the model's output."""
    names = [
        str((event.attributes or {}).get("exception.type") or "")
        for event in events
        if event.name == "exception"
    ]
    names.append(str(attributes.get("error.type") or ""))
    name = "Error"
    for text in names:
        found = _ERROR_CLASS.findall(text) or re.findall(r"([A-Za-z_]\w*)$", text)
        if found:
            name = found[-1]
            break
    return f"{name}: {status}" if status is not None and status >= 400 else name
