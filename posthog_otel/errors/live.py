"""``$exception_list`` entries from a live exception object.

Walks the exception's traceback (keeping the frames nearest the raise), its ``__cause__`` /
``__context__`` chain and the members of exception groups, each exception once, and reads
each frame's source lines through ``linecache``.  An exception that was never raised gets
the caller's current stack instead, without this package's frames.

Usage::

    from posthog_otel.errors.frames import FrameOptions
    from posthog_otel.errors.live import exception_list

    try:
        charge(order)
    except PaymentError as exc:
        entries = exception_list(exc, options=FrameOptions(in_app_modules=("myapp",)))

Never raises: on unexpected trouble it logs at debug level on the ``posthog_otel`` logger and
returns a frameless entry.  Imports only the standard library and its sibling modules.
"""

from __future__ import annotations

import builtins
import logging
import sys
from collections import deque
from collections.abc import Iterator
from types import CodeType, FrameType, TracebackType
from typing import Any

from .entries import (
    MAX_ENTRIES,
    ExceptionNode,
    bare_entry,
    flatten,
    safe_str,
    type_module,
    type_name,
)
from .frames import (
    DEFAULT_OPTIONS,
    MAX_FRAMES,
    FrameOptions,
    is_own,
    python_frame,
    source_context,
    source_lines,
)

__all__ = ["exception_list"]

_log = logging.getLogger("posthog.otel")

_BASE_EXCEPTION_GROUP: type[BaseException] | None = getattr(builtins, "BaseExceptionGroup", None)


def exception_list(
    exc: BaseException, *, handled: bool = True, options: FrameOptions = DEFAULT_OPTIONS
) -> list[dict[str, Any]]:
    """Return the ``$exception_list`` entries for ``exc``, its causes and group members.

    An exception that was never raised has no traceback; it gets the caller's current stack
    (without this package's frames) and is reported as handled.
    """
    try:
        raised = exc.__traceback__ is not None
        root = _LiveWalker(options).node(exc, top=True)
        if root is not None:
            return flatten(root, handled=handled or not raised)
    except Exception:
        _log.debug("posthog_otel: could not describe exception %r", type(exc), exc_info=True)
    return [bare_entry(type_name(exc), safe_str(exc), type_module(exc), handled)]


class _LiveWalker:
    """Turns an exception and everything it links to into ``ExceptionNode`` trees, once each."""

    def __init__(self, options: FrameOptions) -> None:
        self.options = options
        self.seen: set[int] = set()
        self.budget = MAX_ENTRIES

    def node(self, exc: BaseException, top: bool = False) -> ExceptionNode | None:
        if id(exc) in self.seen or self.budget <= 0:
            return None
        self.seen.add(id(exc))
        self.budget -= 1
        node = ExceptionNode(type_name(exc), safe_str(exc), type_module(exc))
        try:
            node.frames = self.frames(exc, top)
        except Exception:
            _log.debug("posthog_otel: could not read an exception's frames", exc_info=True)
        if _BASE_EXCEPTION_GROUP is not None and isinstance(exc, _BASE_EXCEPTION_GROUP):
            node.is_group = True
            for member in getattr(exc, "exceptions", ()):
                if self.budget <= 0:
                    break
                child = self.node(member) if isinstance(member, BaseException) else None
                if child is not None:
                    node.children.append(child)
        cause, source = _next_in_chain(exc)
        if cause is not None:
            node.cause, node.cause_source = self.node(cause), source
        return node

    def frames(self, exc: BaseException, top: bool) -> list[dict[str, Any]]:
        tb = exc.__traceback__
        if tb is not None:
            picked = deque(_walk_traceback(tb), maxlen=MAX_FRAMES)
        elif top:
            picked = deque(_current_stack())
        else:
            return []
        return [_live_frame(frame, lineno, self.options) for frame, lineno in picked]


def _next_in_chain(exc: BaseException) -> tuple[BaseException | None, str]:
    cause = exc.__cause__
    if isinstance(cause, BaseException):
        return cause, "__cause__"
    context = exc.__context__
    if isinstance(context, BaseException) and not exc.__suppress_context__:
        return context, "__context__"
    return None, ""


def _walk_traceback(tb: TracebackType | None) -> Iterator[tuple[FrameType, int | None]]:
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def _current_stack() -> list[tuple[FrameType, int | None]]:
    """The caller's stack, oldest first, without this package's frames."""
    picked: list[tuple[FrameType, int | None]] = []
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and len(picked) < MAX_FRAMES:
        if not is_own(frame.f_code.co_filename, _frame_module(frame)):
            picked.append((frame, frame.f_lineno))
        frame = frame.f_back
    picked.reverse()
    return picked


def _frame_module(frame: FrameType) -> str | None:
    name = frame.f_globals.get("__name__")
    return name if isinstance(name, str) else None


def _code_name(code: CodeType) -> str:
    name = getattr(code, "co_qualname", None)
    return name if isinstance(name, str) else code.co_name


def _live_frame(frame: FrameType, lineno: int | None, options: FrameOptions) -> dict[str, Any]:
    code = frame.f_code
    result = python_frame(code.co_filename, _code_name(code), _frame_module(frame), lineno, options)
    lines = source_lines(code.co_filename, frame.f_globals)
    result.update(source_context(lines, lineno, options.context_lines))
    return result
