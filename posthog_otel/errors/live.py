"""``$exception_list`` entries from a live exception object, as posthog-python builds them.

Walks the exception's traceback (keeping the frames nearest the raise), its cause chain
(``__cause__`` after ``raise ... from``, else the implicit ``__context__``) and the members of
exception groups, each exception once, and reads each frame's source lines through the
module's loader or ``linecache``.  An exception that was never raised gets the capturing
call's stack instead (marked ``synthetic``), without this package's innermost frames.
Frames that ask to be hidden (``__traceback_hide__`` / ``__tracebackhide__`` in their
locals) are left out.

Usage::

    from posthog_otel.errors.frames import FrameOptions
    from posthog_otel.errors.live import exception_list

    try:
        charge(order)
    except PaymentError as exc:
        entries = exception_list(exc, options=FrameOptions(in_app_modules=("myapp",)))
        entries = exception_list(sys.exc_info())  # the same, from an exc_info tuple

Never raises: on unexpected trouble it logs at debug level on the ``posthog_otel`` logger and
returns a frameless entry.  Imports only the standard library and its sibling modules.
"""

from __future__ import annotations

import builtins
import linecache
import logging
import sys
from collections import deque
from collections.abc import Iterator
from types import FrameType, TracebackType
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
)

__all__ = ["ExcInfo", "error_message", "exc_info_of", "exception_list"]

_log = logging.getLogger("posthog.otel")

_BASE_EXCEPTION_GROUP: type[BaseException] | None = getattr(builtins, "BaseExceptionGroup", None)
_MAX_MEMBER_INSPECTIONS = 1000  # group members looked at per list, duplicates included
_HIDE_FLAGS = ("__traceback_hide__", "__tracebackhide__")
_HIDDEN_MODULE_PREFIXES = ("sentry_sdk.",)

ExcInfo = tuple[Any, Any, Any]


def exc_info_of(value: object) -> tuple[BaseException, TracebackType | None] | None:
    """The exception and traceback of an exception or a ``sys.exc_info()`` tuple; else None."""
    if isinstance(value, BaseException):
        return value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        tb = value[2]
        return value[1], tb if isinstance(tb, TracebackType) else None
    return None


def exception_list(
    exc: BaseException | ExcInfo,
    *,
    handled: bool = True,
    mechanism_type: str = "generic",
    options: FrameOptions = DEFAULT_OPTIONS,
) -> list[dict[str, Any]]:
    """Return the ``$exception_list`` entries for ``exc``, its causes and group members.

    ``exc`` is an exception or a ``sys.exc_info()`` tuple (whose traceback is used for the
    outermost exception).  An exception object that was never raised gets the caller's
    current stack; a tuple without a traceback gets no frames.  Returns an empty list for a
    tuple without an exception (``(None, None, None)``).
    """
    found = exc_info_of(exc)
    if found is None:
        return []
    value, tb = found
    try:
        walker = _LiveWalker(options)
        stack = None
        if tb is None and isinstance(exc, BaseException):
            stack = _current_stack()
        root = walker.node(value, tb, stack)
        if root is not None:
            return flatten(root, handled=handled, mechanism_type=mechanism_type)
    except Exception:
        _log.debug("posthog_otel: could not describe exception %r", type(value), exc_info=True)
    entry = bare_entry(type_name(value), error_message(value), type_module(value), handled)
    entry["mechanism"]["type"] = mechanism_type
    return [entry]


def error_message(exc: BaseException) -> str:
    """The exception's ``message`` or ``detail`` attribute when set, else ``str(exc)``.

    An ``ExceptionGroup`` reads as its message, without the "(N sub-exceptions)" suffix.
    """
    for attribute in ("message", "detail"):
        try:
            value = getattr(exc, attribute, "")
            if value:
                return safe_str(value)
        except Exception:
            continue
    return safe_str(exc)


class _LiveWalker:
    """Turns an exception and everything it links to into ``ExceptionNode`` trees, once each."""

    def __init__(self, options: FrameOptions) -> None:
        self.options = options
        self.seen: set[int] = set()
        self.keep: list[BaseException] = []  # keeps ids unique while walking
        self.budget = MAX_ENTRIES
        self.inspections = _MAX_MEMBER_INSPECTIONS
        self.sources: dict[tuple[int, str], list[str]] = {}

    def node(
        self,
        exc: BaseException,
        tb: TracebackType | None,
        stack: list[tuple[FrameType, int | None]] | None = None,
    ) -> ExceptionNode | None:
        if id(exc) in self.seen or self.budget <= 0:
            return None
        self.seen.add(id(exc))
        self.keep.append(exc)
        self.budget -= 1
        node = ExceptionNode(type_name(exc), error_message(exc), type_module(exc))
        node.errno = _errno(exc)
        try:
            if tb is not None:
                picked = deque(_walk_traceback(tb), maxlen=MAX_FRAMES)
            elif stack is not None:
                picked, node.synthetic = deque(stack), bool(stack)
            else:
                picked = deque()
            node.frames = [self.frame(frame, lineno) for frame, lineno in picked]
        except Exception:
            _log.debug("posthog_otel: could not read an exception's frames", exc_info=True)
        cause, source = _next_in_chain(exc)
        if cause is not None and self.budget > 0:
            node.cause, node.cause_source = self.node(cause, cause.__traceback__), source
        if _BASE_EXCEPTION_GROUP is not None and isinstance(exc, _BASE_EXCEPTION_GROUP):
            node.is_group = True
            for member in getattr(exc, "exceptions", ()):
                if self.budget <= 0 or self.inspections <= 0:
                    break
                self.inspections -= 1
                if not isinstance(member, BaseException):
                    continue
                child = self.node(member, member.__traceback__)
                if child is not None:
                    node.children.append(child)
        return node

    def frame(self, frame: FrameType, lineno: int | None) -> dict[str, Any]:
        code = frame.f_code
        module = _frame_module(frame)
        qualname = getattr(code, "co_qualname", None)
        name = qualname if isinstance(qualname, str) and qualname else code.co_name
        result = python_frame(code.co_filename, name, module, lineno, self.options)
        lines = self.lines(frame, module)
        result.update(source_context(lines, lineno, self.options.context_lines))
        return result

    def lines(self, frame: FrameType, module: str | None) -> list[str]:
        """The frame's source: from its module's loader when it has one, else linecache."""
        loader = frame.f_globals.get("__loader__")
        key = (id(loader), f"{module}\0{frame.f_code.co_filename}")
        cached = self.sources.get(key)
        if cached is not None:
            return cached
        found: list[str] | None = None
        if loader is not None and hasattr(loader, "get_source"):
            try:
                text = loader.get_source(module)
            except Exception:
                text = None
            if isinstance(text, str):
                found = text.splitlines()
        if found is None:
            try:
                found = linecache.getlines(frame.f_code.co_filename)
            except Exception:
                found = []
        self.sources[key] = found
        return found


def _errno(exc: BaseException) -> Any:
    try:
        number = getattr(exc, "errno", None)
    except Exception:
        return None
    return number if number is None or isinstance(number, int | str) else safe_str(number)


def _next_in_chain(exc: BaseException) -> tuple[BaseException | None, str]:
    """The next exception posthog-python follows: the cause after ``from``, else the context."""
    try:
        if exc.__suppress_context__:
            cause, source = exc.__cause__, "cause"
        else:
            cause, source = exc.__context__, "context"
    except Exception:
        return None, ""
    return (cause, source) if isinstance(cause, BaseException) else (None, "")


def _walk_traceback(tb: TracebackType | None) -> Iterator[tuple[FrameType, int | None]]:
    while tb is not None:
        if not _hidden(tb.tb_frame):
            yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def _hidden(frame: FrameType) -> bool:
    module = _frame_module(frame)
    if module and module.startswith(_HIDDEN_MODULE_PREFIXES):
        return True
    for flag in _HIDE_FLAGS:
        try:
            if frame.f_locals[flag]:
                return True
        except Exception:
            continue
    return False


def _current_stack() -> list[tuple[FrameType, int | None]]:
    """The caller's stack, oldest first, from the innermost frame outside this package."""
    picked: list[tuple[FrameType, int | None]] = []
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and is_own(frame.f_code.co_filename, _frame_module(frame)):
        frame = frame.f_back
    while frame is not None:
        if not _hidden(frame):
            picked.append((frame, frame.f_lineno))
        frame = frame.f_back
    picked.reverse()
    return picked[-MAX_FRAMES:]


def _frame_module(frame: FrameType) -> str | None:
    name = frame.f_globals.get("__name__")
    return name if isinstance(name, str) else None
