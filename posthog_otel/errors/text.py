"""``$exception_list`` entries from stack-trace text, whatever language printed it.

OpenTelemetry's ``span.record_exception`` stores the formatted traceback in the
``exception.stacktrace`` attribute; the span mapping reads it from our own spans and the OTLP
bridge from other processes' spans.  Python tracebacks are recognised by their ``Traceback``
header or ``File "...", line N`` lines; other text is tried as Java, then Node.js, then Go,
and finally read as a bare ``Type: message``.  Oversized text is clipped (keeping the end of a
Python traceback, where the outermost exception is).

Usage::

    from posthog_otel.errors.frames import FrameOptions
    from posthog_otel.errors.text import exception_list_from_stacktrace

    entries = exception_list_from_stacktrace(
        attributes.get("exception.stacktrace"),
        exc_type=attributes.get("exception.type"),
        message=attributes.get("exception.message"),
        options=FrameOptions(local_source=False),  # text from another machine
    )

Never raises: on unexpected trouble it logs at debug level on the ``posthog_otel`` logger and
returns what the arguments alone say.  Imports only the standard library and its sibling
modules.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from .entries import UNKNOWN_TYPE, ExceptionNode, apply_overrides, bare_entry, flatten
from .frames import DEFAULT_OPTIONS, FrameOptions
from .other_languages import parse_go, parse_java, parse_node
from .python_text import parse_python

__all__ = ["exception_list_from_stacktrace"]

_log = logging.getLogger("posthog.otel")

_MAX_TEXT = 256 * 1024  # characters of stack trace text we are willing to parse
_GROUP_SUFFIX = re.compile(r" \(\d{1,9} sub-exceptions?\)\Z")
_PY_HINT = re.compile(
    r'^[ \t]*(?:[|+] )?(?:Traceback \(most recent call last\):|File "[^"\n]*", line \d+)', re.M
)


def exception_list_from_stacktrace(
    stacktrace: str | None,
    *,
    exc_type: str | None = None,
    message: str | None = None,
    handled: bool = False,
    options: FrameOptions = DEFAULT_OPTIONS,
) -> list[dict[str, Any]]:
    """Return ``$exception_list`` entries parsed from stack trace text.

    ``exc_type`` (possibly qualified, e.g. ``"myapp.errors.PaymentError"``) and ``message``
    override what the text says about the outermost exception.  Returns an empty list only when
    neither the text nor the arguments describe any exception.
    """
    try:
        text = _clip_text(stacktrace if isinstance(stacktrace, str) else "")
        root = _parse_text(text, options)
        entries = flatten(root, handled=handled) if root is not None else []
        if not entries:
            if exc_type is None and message is None:
                return []
            entries = [bare_entry(UNKNOWN_TYPE, "", None, handled)]
        apply_overrides(entries[0], exc_type, message)
        return entries
    except Exception:
        _log.debug("posthog_otel: could not parse a stack trace", exc_info=True)
    if exc_type is None and message is None:
        return []
    return [bare_entry(str(exc_type or UNKNOWN_TYPE), str(message or ""), None, handled)]


def _clip_text(text: str) -> str:
    """Python puts the outermost exception last, so keep the tail of an oversized text."""
    if len(text) <= _MAX_TEXT:
        return text
    tail = text[-_MAX_TEXT:]
    if _PY_HINT.search(tail):
        return tail.partition("\n")[2]
    return text[:_MAX_TEXT]


def _parse_text(text: str, options: FrameOptions) -> ExceptionNode | None:
    root = _parse_any(text, options)
    if root is not None:
        _group_messages(root)
    return root


def _group_messages(root: ExceptionNode) -> None:
    """A printed group reads "message (N sub-exceptions)"; a live one's value is the message."""
    pending, seen = [root], set()
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.is_group:
            node.value = _GROUP_SUFFIX.sub("", node.value)
        pending.extend(node.children)
        if node.cause is not None:
            pending.append(node.cause)


def _parse_any(text: str, options: FrameOptions) -> ExceptionNode | None:
    if not text.strip():
        return None
    if not _PY_HINT.search(text):
        lines = text.splitlines()
        for parse in (parse_java, parse_node, parse_go):
            node = parse(lines)
            if node is not None:
                return node
    # Also the fallback: an exception that was never raised prints as just "Type: message".
    return parse_python(text, options)
