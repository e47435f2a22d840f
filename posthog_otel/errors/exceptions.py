"""Build PostHog's ``$exception_list`` from Python exceptions and from stack trace text.

PostHog Error Tracking wants every ``$exception`` event to carry ``$exception_list``: one entry
per exception (outermost first, root cause last), each with its type, message and the stack
frames that led to it.  This module produces those entries from two sources:

* a live exception object (``exception_list``), walking its traceback, its ``__cause__`` /
  ``__context__`` chain and the members of exception groups;
* the ``exception.stacktrace`` text that OpenTelemetry's ``span.record_exception`` stores
  (``exception_list_from_stacktrace``).  That text is what ``traceback.format_exception``
  prints; traces copied from Java, Node and Go programs are understood on a best-effort basis.

It also remembers which exception objects were already reported (``mark_captured``), so that
nested contexts, middleware and span hooks send each one only once.

Usage::

    import os
    from posthog_otel.errors import FrameOptions, exception_list, mark_captured

    options = FrameOptions(project_root=os.getcwd(), in_app_modules=("myapp",))
    try:
        charge(order)
    except PaymentError as exc:
        if mark_captured(exc):
            properties = {"$exception_list": exception_list(exc, options=options)}

    # From the attributes of an OpenTelemetry "exception" span event:
    entries = exception_list_from_stacktrace(
        attributes.get("exception.stacktrace"),
        exc_type=attributes.get("exception.type"),
        message=attributes.get("exception.message"),
        options=options,
    )

No public function here raises: on unexpected trouble they log at debug level on the
``posthog_otel`` logger and return the best result they have.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import linecache
import logging
import os
import re
import sys
import sysconfig
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from types import CodeType, FrameType, TracebackType
from typing import Any

__all__ = [
    "FrameOptions",
    "exception_list",
    "exception_list_from_stacktrace",
    "is_captured",
    "mark_captured",
]

_log = logging.getLogger("posthog_otel")

_MAX_ENTRIES = 50  # exceptions per list: bounds pathological chains and groups
_MAX_FRAMES = 200  # frames per exception, keeping those nearest the raise
_MAX_TEXT = 256 * 1024  # characters of stack trace text we are willing to parse
_MAX_LINE = 1000  # characters kept of one source line
_MAX_GROUP_NESTING = 64  # deepest exception group level read from text
_UNKNOWN_TYPE = "Error"

_BASE_EXCEPTION_GROUP: type[BaseException] | None = getattr(builtins, "BaseExceptionGroup", None)
_PACKAGE = __name__.partition(".")[0]
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class FrameOptions:
    """How frames are described.

    ``project_root`` is an absolute directory whose files are the application's own ("in app");
    ``None`` means unknown.  ``in_app_modules`` are module-name prefixes that are in app too
    (``"myapp"`` matches ``myapp`` and ``myapp.x`` but not ``myapplication``).  ``context_lines``
    is how many source lines to include before and after each frame's line.  ``local_source``
    False says stack trace text comes from another machine (the OTLP bridge): its paths are
    kept as written and never opened, resolved or matched against this interpreter's modules.
    """

    project_root: str | None = None
    in_app_modules: tuple[str, ...] = ()
    context_lines: int = 5
    local_source: bool = True


_DEFAULT_OPTIONS = FrameOptions()


@dataclass
class _Node:
    """One exception, whichever source it came from, before mechanisms are assigned."""

    type: str
    value: str
    module: str | None
    frames: list[dict[str, Any]] = field(default_factory=list)
    load_frames: Callable[[], list[dict[str, Any]]] | None = None  # deferred until emitted
    is_group: bool = False
    children: list[_Node] = field(default_factory=list)
    cause: _Node | None = None
    cause_source: str = "__context__"


# --------------------------------------------------------------------------- public API


def exception_list(
    exc: BaseException, *, handled: bool = True, options: FrameOptions = _DEFAULT_OPTIONS
) -> list[dict[str, Any]]:
    """Return the ``$exception_list`` entries for ``exc``, its causes and group members.

    An exception that was never raised has no traceback; it gets the caller's current stack
    (without this package's frames) and is reported as handled.
    """
    try:
        raised = exc.__traceback__ is not None
        root = _LiveWalker(options).node(exc, top=True)
        if root is not None:
            return _flatten(root, handled=handled or not raised)
    except Exception:
        _log.debug("posthog_otel: could not describe exception %r", type(exc), exc_info=True)
    return [_bare_entry(_type_name(exc), _safe_str(exc), _type_module(exc), handled)]


def exception_list_from_stacktrace(
    stacktrace: str | None,
    *,
    exc_type: str | None = None,
    message: str | None = None,
    handled: bool = False,
    options: FrameOptions = _DEFAULT_OPTIONS,
) -> list[dict[str, Any]]:
    """Return ``$exception_list`` entries parsed from stack trace text.

    ``exc_type`` (possibly qualified, e.g. ``"myapp.errors.PaymentError"``) and ``message``
    override what the text says about the outermost exception.  Returns an empty list only when
    neither the text nor the arguments describe any exception.
    """
    try:
        text = _clip_text(stacktrace if isinstance(stacktrace, str) else "")
        root = _parse_text(text, options)
        entries = _flatten(root, handled=handled) if root is not None else []
        if not entries:
            if exc_type is None and message is None:
                return []
            entries = [_bare_entry(_UNKNOWN_TYPE, "", None, handled)]
        _apply_overrides(entries[0], exc_type, message)
        return entries
    except Exception:
        _log.debug("posthog_otel: could not parse a stack trace", exc_info=True)
    if exc_type is None and message is None:
        return []
    return [_bare_entry(str(exc_type or _UNKNOWN_TYPE), str(message or ""), None, handled)]


_CAPTURED_ATTR = "__posthog_otel_captured__"
_FALLBACK_LIMIT = 1024
_captured_lock = threading.Lock()
# For exceptions that refuse our attribute: id -> weak reference, or the object itself when it
# cannot be weakly referenced (a bounded number of those are kept alive).
_captured_fallback: dict[int, Any] = {}


def mark_captured(exc: BaseException) -> bool:
    """Mark ``exc`` as reported; True the first time for this object, False afterwards."""
    try:
        with _captured_lock:
            if _is_marked(exc):
                return False
            _set_mark(exc)
            return True
    except Exception:
        _log.debug("posthog_otel: could not mark an exception as captured", exc_info=True)
        return True


def is_captured(exc: BaseException) -> bool:
    """Whether ``mark_captured`` was already called for this exception object."""
    try:
        with _captured_lock:
            return _is_marked(exc)
    except Exception:
        _log.debug("posthog_otel: could not check an exception's mark", exc_info=True)
        return False


# --------------------------------------------------------------------------- capture marks


def _is_marked(exc: BaseException) -> bool:
    try:
        if getattr(exc, _CAPTURED_ATTR, None) is True:
            return True
    except Exception:
        pass
    held = _captured_fallback.get(id(exc))
    if isinstance(held, weakref.ref):
        held = held()
    return held is exc


def _set_mark(exc: BaseException) -> None:
    try:
        setattr(exc, _CAPTURED_ATTR, True)
        if getattr(exc, _CAPTURED_ATTR, None) is True:
            return
    except Exception:
        pass
    key = id(exc)
    held: Any
    try:
        held = weakref.ref(exc, lambda _ref: _captured_fallback.pop(key, None))
    except TypeError:
        held = exc
    while len(_captured_fallback) >= _FALLBACK_LIMIT:
        _captured_fallback.pop(next(iter(_captured_fallback)), None)
    _captured_fallback[key] = held


# --------------------------------------------------------------------------- entries


def _flatten(root: _Node, *, handled: bool) -> list[dict[str, Any]]:
    """Entries in PostHog's order: each exception, then its group members, then its cause."""
    entries: list[dict[str, Any]] = []
    ids = itertools.count()

    def visit(node: _Node, parent_id: int | None, source: str) -> None:
        if len(entries) >= _MAX_ENTRIES:
            return
        mechanism: dict[str, Any] = {"type": "generic", "handled": handled}
        own_id: int | None = None
        if node.is_group or parent_id is not None:
            own_id = next(ids)
            if parent_id is not None:
                mechanism.update(type="chained", parent_id=parent_id, source=source)
            mechanism["exception_id"] = own_id
            if node.is_group:
                mechanism["is_exception_group"] = True
        entry: dict[str, Any] = {"type": node.type, "value": node.value, "module": node.module}
        entry["mechanism"] = mechanism
        frames = node.load_frames() if node.load_frames is not None else node.frames
        if frames:
            entry["stacktrace"] = {"type": "raw", "frames": frames}
        entries.append(entry)
        for index, child in enumerate(node.children):
            visit(child, own_id, f"exceptions[{index}]")
        if node.cause is not None:
            visit(node.cause, own_id, node.cause_source)

    visit(root, None, "")
    return entries


def _bare_entry(type_: str, value: str, module: str | None, handled: bool) -> dict[str, Any]:
    mechanism = {"type": "generic", "handled": handled}
    return {"type": type_, "value": value, "module": module, "mechanism": mechanism}


def _apply_overrides(entry: dict[str, Any], exc_type: str | None, message: str | None) -> None:
    module, name = _split_type_name(str(exc_type or ""))
    # A bare name that agrees with the text keeps the module the text gave.
    if name and (module is not None or entry["type"] != name):
        entry["type"], entry["module"] = name, module
    if message is not None:
        entry["value"] = str(message)


def _type_name(exc: object) -> str:
    cls = type(exc)
    name = getattr(cls, "__qualname__", None)
    return name if isinstance(name, str) else cls.__name__


def _type_module(exc: object) -> str | None:
    module = getattr(type(exc), "__module__", None)
    return module if isinstance(module, str) and module != "builtins" else None


def _safe_str(exc: object) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__} object>"


def _split_type_name(name: str) -> tuple[str | None, str]:
    """Split ``"pkg.mod.Outer.Error"`` into module and qualified name."""
    name = name.strip()
    parts = name.split(".")
    if len(parts) < 2 or not all(parts):
        return None, name
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is not None and _names_a_class(module, parts[cut:]):
            return _no_builtins(".".join(parts[:cut])), ".".join(parts[cut:])
    if "<locals>" in parts[2:]:
        cut = parts.index("<locals>") - 1
        return ".".join(parts[:cut]), ".".join(parts[cut:])
    return _no_builtins(".".join(parts[:-1])), parts[-1]


def _names_a_class(module: object, path: list[str]) -> bool:
    target: object = module
    for part in path:
        target = getattr(target, "__dict__", {}).get(part)
    return isinstance(target, type)


def _no_builtins(module: str) -> str | None:
    return None if module == "builtins" else module


# --------------------------------------------------------------------------- live exceptions


class _LiveWalker:
    """Turns an exception and everything it links to into ``_Node`` trees, once each."""

    def __init__(self, options: FrameOptions) -> None:
        self.options = options
        self.seen: set[int] = set()
        self.budget = _MAX_ENTRIES

    def node(self, exc: BaseException, top: bool = False) -> _Node | None:
        if id(exc) in self.seen or self.budget <= 0:
            return None
        self.seen.add(id(exc))
        self.budget -= 1
        node = _Node(_type_name(exc), _safe_str(exc), _type_module(exc))
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
            picked = deque(_walk_traceback(tb), maxlen=_MAX_FRAMES)
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
    while frame is not None and len(picked) < _MAX_FRAMES:
        if not _is_own(frame.f_code.co_filename, _frame_module(frame)):
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
    result = _python_frame(
        code.co_filename, _code_name(code), _frame_module(frame), lineno, options
    )
    lines = _source_lines(code.co_filename, frame.f_globals)
    result.update(_context(lines, lineno, options.context_lines))
    return result


# --------------------------------------------------------------------------- frames


def _python_frame(
    path: str, function: str, module: str | None, lineno: int | None, options: FrameOptions
) -> dict[str, Any]:
    """A frame without its source context; the caller adds that."""
    abs_path = path if _is_pseudo_path(path) else os.path.abspath(path)
    frame: dict[str, Any] = {
        "platform": "python",
        "filename": _display_filename(abs_path, module, options),
        "abs_path": abs_path,
        "function": function,
    }
    if module:
        frame["module"] = module
    if lineno is not None:
        frame["lineno"] = lineno
    in_app = _in_app(abs_path, module, options)
    if in_app is not None:
        frame["in_app"] = in_app
    return frame


def _source_lines(path: str, module_globals: dict[str, Any] | None = None) -> list[str]:
    try:
        return linecache.getlines(path, module_globals)
    except Exception:
        return []


def _context(lines: list[str], lineno: int | None, wanted: int) -> dict[str, Any]:
    if lineno is None or not 0 < lineno <= len(lines):
        return {"pre_context": [], "context_line": None, "post_context": []}
    wanted = max(wanted, 0)

    def clean(found: Iterable[str]) -> list[str]:
        return [line.rstrip("\r\n")[:_MAX_LINE] for line in found]

    return {
        "pre_context": clean(lines[max(lineno - 1 - wanted, 0) : lineno - 1]),
        "context_line": clean([lines[lineno - 1]])[0],
        "post_context": clean(lines[lineno : lineno + wanted]),
    }


def _is_pseudo_path(path: str) -> bool:
    return not path or (path.startswith("<") and path.endswith(">"))


def _is_under(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/\\") + os.sep)


def _relative_to(path: str, root: str) -> str:
    return path[len(root.rstrip("/\\")) + 1 :]


_SITE_PACKAGES = re.compile(r"[\\/](?:site|dist)-packages[\\/]")


def _after_site_packages(path: str) -> str | None:
    matches = list(_SITE_PACKAGES.finditer(path))
    return path[matches[-1].end() :] if matches else None


@cache
def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    found = {paths.get("stdlib"), paths.get("platstdlib"), os.path.dirname(os.__file__)}
    return tuple(os.path.abspath(path) for path in found if path)


@cache
def _normalized_root(root: str) -> str:
    return os.path.abspath(root)


def _is_own(path: str, module: str | None) -> bool:
    if module and (module == _PACKAGE or module.startswith(_PACKAGE + ".")):
        return True
    return not _is_pseudo_path(path) and _is_under(os.path.abspath(path), _PACKAGE_DIR)


def _in_app(abs_path: str, module: str | None, options: FrameOptions) -> bool | None:
    if _is_own(abs_path, module):
        return False
    if module and any(module == p or module.startswith(p + ".") for p in options.in_app_modules):
        return True
    if _SITE_PACKAGES.search(abs_path) or abs_path.startswith("<frozen "):
        return False
    if any(_is_under(abs_path, stdlib) for stdlib in _stdlib_dirs()):
        return False
    if options.project_root and _is_under(abs_path, _normalized_root(options.project_root)):
        return True
    return None


def _display_filename(abs_path: str, module: str | None, options: FrameOptions) -> str:
    """The path PostHog shows: relative to site-packages, stdlib, project or package root."""
    if _is_pseudo_path(abs_path):
        return abs_path
    in_site = _after_site_packages(abs_path)
    if in_site is not None:
        return in_site
    if _is_under(abs_path, _PACKAGE_DIR):
        return _relative_to(abs_path, os.path.dirname(_PACKAGE_DIR))
    roots = list(_stdlib_dirs())
    if options.project_root:
        roots.append(_normalized_root(options.project_root))
    best = max((root for root in roots if _is_under(abs_path, root)), key=len, default=None)
    if best is not None:
        return _relative_to(abs_path, best)
    return _package_relative(abs_path, module) or os.path.basename(abs_path)


def _package_relative(abs_path: str, module: str | None) -> str | None:
    """``/x/lib/pkg/mod.py`` for module ``pkg.mod`` -> ``pkg/mod.py``."""
    if not module or module == "__main__":
        return None
    pieces = re.split(r"[\\/]", abs_path)
    stem = [*pieces[:-1], os.path.splitext(pieces[-1])[0]]
    if stem[-1] == "__init__":
        stem.pop()
    names = module.split(".")
    if len(stem) <= len(names) or stem[-len(names) :] != names:
        return None
    return "/".join(pieces[len(stem) - len(names) :])


def _module_from_path(path: str) -> str | None:
    """The import name of a file, from the longest ``sys.path`` entry that holds it."""
    if path.startswith("<frozen ") and path.endswith(">"):
        return path[len("<frozen ") : -1]
    if _is_pseudo_path(path) or not path.endswith(".py"):
        return None
    abs_path = os.path.abspath(path)
    roots = [os.path.abspath(entry or os.curdir) for entry in sys.path if isinstance(entry, str)]
    best = max((root for root in roots if _is_under(abs_path, root)), key=len, default=None)
    if best is None:
        return None
    parts = _relative_to(abs_path, best)[: -len(".py")].split(os.sep)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) if parts and all(p.isidentifier() for p in parts) else None


# --------------------------------------------------------------------------- text: dispatch


_PY_HINT = re.compile(
    r'^[ \t]*(?:[|+] )?(?:Traceback \(most recent call last\):|File "[^"\n]*", line \d+)', re.M
)


def _clip_text(text: str) -> str:
    """Python puts the outermost exception last, so keep the tail of an oversized text."""
    if len(text) <= _MAX_TEXT:
        return text
    tail = text[-_MAX_TEXT:]
    if _PY_HINT.search(tail):
        return tail.partition("\n")[2]
    return text[:_MAX_TEXT]


def _parse_text(text: str, options: FrameOptions) -> _Node | None:
    if not text.strip():
        return None
    if not _PY_HINT.search(text):
        lines = text.splitlines()
        for parse in (_parse_java, _parse_node, _parse_go):
            node = parse(lines)
            if node is not None:
                return node
    # Also the fallback: an exception that was never raised prints as just "Type: message".
    return _parse_python(text, options)


def _chain(nodes: list[_Node], source: str) -> _Node | None:
    """Link exceptions listed outermost first as causes of each other."""
    for outer, inner in itertools.pairwise(nodes):
        outer.cause, outer.cause_source = inner, source
    return nodes[0] if nodes else None


# --------------------------------------------------------------------------- text: Python


_CAUSE_MARKERS = {
    "The above exception was the direct cause of the following exception:": "__cause__",
    "During handling of the above exception, another exception occurred:": "__context__",
}
_PY_FILE = re.compile(r'^\s*File "(?P<path>.*)", line (?P<lineno>\d+)(?:, in (?P<func>.+))?\s*$')
_PY_REPEAT = re.compile(r"^\s*\[Previous line repeated (?P<count>\d+) more times?\]\s*$")
_PY_CARET = re.compile(r"^\s*[~^]+\s*$")
_PY_EXC_LINE = re.compile(r"^(?P<type>[^\s:]+)(?:: (?P<value>.*))?$")
# Exception groups: "  +-+---------------- 1 ----------------", "    +------...", "    | text"
_GROUP_SEPARATOR = re.compile(r"^( *(?:\+-)?)\+-{16} (\S+) -{16}$")
_GROUP_CLOSER = re.compile(r"^( *)\+-{36}$")
_GROUP_MARGIN = re.compile(r"^( *)[|+](?: (.*))?$")
_GROUP_NOTE = re.compile(r"^(?:\.\.\. \(max_group_depth is \d+\)|and \d+ more exceptions?)$")


@dataclass
class _Members:
    """The member tracebacks printed under an exception group, one list of items each."""

    blocks: list[list[str | _Members]] = field(default_factory=list)


@dataclass
class _RawFrame:
    path: str
    lineno: int | None
    function: str
    source: str | None = None


def _parse_python(text: str, options: FrameOptions) -> _Node | None:
    lines = text.splitlines()
    grouped = any(map(_GROUP_SEPARATOR.match, lines))
    items: list[str | _Members] = _nest_groups(lines) if grouped else list(lines)
    return _parse_python_chain(items, options)


def _nest_groups(lines: list[str]) -> list[str | _Members]:
    """Undo exception-group margins: member tracebacks become nested ``_Members`` blocks."""
    root: list[str | _Members] = []
    stack: list[tuple[int, list[str | _Members]]] = [(0, root)]
    for line in lines:
        separator = _GROUP_SEPARATOR.match(line)
        closer = _GROUP_CLOSER.match(line)
        margin = _GROUP_MARGIN.match(line)
        if separator and len(separator[1]) // 2 <= _MAX_GROUP_NESTING:
            depth = len(separator[1]) // 2
            while len(stack) > 1 and stack[-1][0] >= depth:
                stack.pop()
            parent = stack[-1][1]
            members = parent[-1] if parent and isinstance(parent[-1], _Members) else None
            if separator[2] == "1" or members is None:
                members = _Members()
                parent.append(members)
            block: list[str | _Members] = []
            members.blocks.append(block)
            stack.append((depth, block))
        elif closer:
            while len(stack) > 1 and stack[-1][0] >= len(closer[1]) // 2:
                stack.pop()
        elif margin:
            depth = len(margin[1]) // 2
            depth = depth if depth >= 2 else 0  # an outermost group's own lines sit at depth 1
            while len(stack) > 1 and stack[-1][0] > depth:
                stack.pop()
            content = margin[2] or ""
            if not _GROUP_NOTE.match(content):
                stack[-1][1].append(content)
        else:
            del stack[1:]
            root.append(line)
    return root


def _parse_python_chain(items: list[str | _Members], options: FrameOptions) -> _Node | None:
    """Parse sections separated by chain markers; the text lists the root cause first."""
    sections: list[list[str | _Members]] = [[]]
    sources: list[str] = []
    for item in items:
        if isinstance(item, str) and item.strip() in _CAUSE_MARKERS:
            if sections[-1] and sections[-1][-1] == "":
                sections[-1].pop()
            sources.append(_CAUSE_MARKERS[item.strip()])
            sections.append([])
        else:
            sections[-1].append(item)
    outermost: _Node | None = None
    for section, source in zip(sections, ["__context__", *sources], strict=True):
        node = _parse_python_section(section, options)
        if node is None:
            continue
        if outermost is not None:
            node.cause, node.cause_source = outermost, source
        outermost = node
    return outermost


def _parse_python_section(items: list[str | _Members], options: FrameOptions) -> _Node | None:
    lines = [item for item in items if isinstance(item, str)]
    members = next((item for item in items if isinstance(item, _Members)), None)
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index < len(lines) and lines[index].strip().endswith("Traceback (most recent call last):"):
        index += 1
    raw: deque[_RawFrame] = deque(maxlen=_MAX_FRAMES)
    syntax_location: tuple[str, str] | None = None
    while index < len(lines) and lines[index][:1].isspace():
        line = lines[index]
        index += 1
        if found := _PY_FILE.match(line):
            if found["func"] is None:  # a SyntaxError's location, not a frame
                syntax_location = (found["path"], found["lineno"])
            elif syntax_location is None:
                lineno = int(found["lineno"])
                raw.append(
                    _RawFrame(found["path"], lineno if lineno < 2**31 else None, found["func"])
                )
        elif repeat := _PY_REPEAT.match(line):
            if raw:
                raw.extend(itertools.repeat(raw[-1], min(int(repeat["count"]), _MAX_FRAMES)))
        elif raw and raw[-1].source is None and syntax_location is None:
            # the first source line under a frame; caret lines (~~~^^^) only underline it
            raw[-1].source = None if _PY_CARET.match(line) else line.strip() or None
    if index >= len(lines) and not raw:
        return None
    type_name, value = _UNKNOWN_TYPE, ""
    if index < len(lines):
        head = _PY_EXC_LINE.match(lines[index])
        type_name, value = (
            (head["type"], head["value"] or "") if head else (_UNKNOWN_TYPE, lines[index])
        )
        value = "\n".join([value, *lines[index + 1 :]])
    if syntax_location is not None:
        value = f"{value} ({os.path.basename(syntax_location[0])}, line {syntax_location[1]})"
    module, name = _split_type_name(type_name)
    node = _Node(name, value, module)
    node.load_frames = lambda: [_text_frame(frame, options) for frame in raw]
    if members is not None or "Exception Group Traceback" in "".join(lines[:2]):
        node.is_group = True
    for block in members.blocks if members is not None else []:
        child = _parse_python_chain(block, options)
        if child is not None:
            node.children.append(child)
    return node


def _text_frame(raw: _RawFrame, options: FrameOptions) -> dict[str, Any]:
    if not options.local_source:
        return _foreign_frame(raw, options)
    module = _module_from_path(raw.path)
    function = raw.function
    lines = _source_lines(raw.path) if raw.source is not None else []
    lineno = raw.lineno
    if lineno is None or not 0 < lineno <= len(lines) or lines[lineno - 1].strip() != raw.source:
        lines = []  # the local file is missing or differs from the one that raised
    elif sys.version_info >= (3, 11):  # live frames use co_qualname there; text has co_name
        function = _qualname(raw.path, lines, lineno, function)
    frame = _python_frame(raw.path, function, module, lineno, options)
    frame.update(_context(lines, lineno, options.context_lines))
    if not lines and raw.source is not None:
        frame["context_line"] = raw.source[:_MAX_LINE]
    return frame


def _foreign_frame(raw: _RawFrame, options: FrameOptions) -> dict[str, Any]:
    """A frame from another machine's traceback: only what the text says."""
    path = raw.path
    in_site = _after_site_packages(path)
    frame: dict[str, Any] = {
        "platform": "python",
        "filename": in_site or path.replace("\\", "/").rpartition("/")[2] or path,
        "abs_path": path,
        "function": raw.function,
    }
    if raw.lineno is not None:
        frame["lineno"] = raw.lineno
    if in_site is not None or path.startswith("<frozen "):
        frame["in_app"] = False
    frame["pre_context"] = []
    frame["context_line"] = None if raw.source is None else raw.source[:_MAX_LINE]
    frame["post_context"] = []
    return frame


# (first line, last line, qualified name, is a function) of every def and class in a file
_Scope = tuple[int, int, str, bool]
_scope_cache: dict[str, tuple[list[str], list[_Scope]]] = {}


def _qualname(path: str, lines: list[str], lineno: int, name: str) -> str:
    """Recover ``co_qualname`` for a frame known only by file, line and ``co_name``."""
    enclosing = sorted(
        (scope for scope in _scopes(path, lines) if scope[0] <= lineno <= scope[1]), reverse=True
    )
    for scope in enclosing:
        if scope[2].rpartition(".")[2] == name:
            return scope[2]
    if name.startswith("<") and name != "<module>" and enclosing:
        _, _, qualname, is_function = enclosing[0]
        return f"{qualname}.<locals>.{name}" if is_function else f"{qualname}.{name}"
    return name


def _scopes(path: str, lines: list[str]) -> list[_Scope]:
    cached = _scope_cache.get(path)
    if cached is not None and cached[0] is lines:
        return cached[1]
    scopes: list[_Scope] = []
    try:
        pending: list[tuple[ast.AST, str]] = [(ast.parse("".join(lines)), "")]
    except Exception:
        pending = []
    while pending:
        parent, prefix = pending.pop()
        for node in ast.iter_child_nodes(parent):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                is_function = not isinstance(node, ast.ClassDef)
                qualname = prefix + node.name
                scopes.append((node.lineno, node.end_lineno or node.lineno, qualname, is_function))
                pending.append((node, qualname + (".<locals>." if is_function else ".")))
            else:
                pending.append((node, prefix))
    if len(_scope_cache) >= 64:
        _scope_cache.clear()
    _scope_cache[path] = (lines, scopes)
    return scopes


# --------------------------------------------------------------------------- text: others

_JAVA_FRAME = re.compile(
    r"^\s+at (?:[^\s(]*/)?(?P<cls>[^\s(/]+)\.(?P<fn>[^\s.(/]+)\((?P<loc>[^()]*)\)\s*$"
)
_JAVA_HEADER = re.compile(
    r'^(?:Exception in thread "[^"]*" )?(?P<caused>Caused by: )?'
    r"(?P<type>[A-Za-z_$][\w$.]*)(?::\s?(?P<value>.*))?$"
)
_NODE_FRAME = re.compile(r"^\s+at (?:async )?(?:(?P<fn>.+?) \((?P<loc>.+)\)|(?P<bare>\S+))\s*$")
_NODE_LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)$")
_GO_FILE = re.compile(r"^\s+(?P<file>\S.*?\.go):(?P<line>\d+)(?: \+0x[0-9a-fA-F]+)?\s*$")
_GO_GOROUTINE = re.compile(r"^goroutine \d+ \[")


def _oldest_first(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Foreign traces print the raising frame first; PostHog wants it last."""
    return frames[::-1][-_MAX_FRAMES:]


def _headline(text: str) -> _Node:
    """A node for a ``Type: message`` line (or just a message)."""
    found = _JAVA_HEADER.match(text)
    if found is None or found["caused"]:
        return _Node(_UNKNOWN_TYPE, text.strip(), None)
    module, name = _split_type_name(found["type"])
    return _Node(name, found["value"] or "", module)


def _parse_java(lines: list[str]) -> _Node | None:
    nodes: list[_Node] = []
    skipping = False  # inside a "Suppressed:" block, which is not part of the cause chain
    for line in lines:
        if not line.strip():
            continue
        if line[:1].isspace():
            skipping = skipping or line.lstrip().startswith("Suppressed: ")
            found = _JAVA_FRAME.match(line)
            if found and nodes and not skipping:
                file, _, lineno = found["loc"].partition(":")
                frame: dict[str, Any] = {"platform": "java", "function": found["fn"]}
                frame["module"] = found["cls"]
                if file.endswith((".java", ".kt", ".scala", ".groovy")):
                    frame["filename"] = file
                if lineno.isdigit():
                    frame["lineno"] = int(lineno)
                nodes[-1].frames.append(frame)
            continue
        header = _JAVA_HEADER.match(line)
        if header and (not nodes or header["caused"]):
            skipping = False
            module, name = _split_type_name(header["type"])
            nodes.append(_Node(name, header["value"] or "", module))
        elif nodes and not nodes[-1].frames and not skipping:
            nodes[-1].value += "\n" + line
    if not any(node.frames for node in nodes):
        return None
    for node in nodes:
        node.frames = _oldest_first(node.frames)
    return _chain(nodes, "__cause__")


def _parse_node(lines: list[str]) -> _Node | None:
    head: list[str] = []
    frames: list[dict[str, Any]] = []
    for line in lines:
        found = _NODE_FRAME.match(line)
        if found is None:
            if not frames and line.strip():
                head.append(line)
            continue
        location = _NODE_LOCATION.match(found["loc"] or found["bare"])
        if location is not None:
            frames.append(
                {
                    "platform": "node:javascript",
                    "filename": location["file"],
                    "function": found["fn"] or "<anonymous>",
                    "lineno": int(location["line"]),
                    "colno": int(location["col"]),
                }
            )
    if not frames:
        return None
    node = _headline(head[0] if head else "")
    node.value = "\n".join([node.value, *head[1:]])
    node.frames = _oldest_first(frames)
    return node


def _parse_go(lines: list[str]) -> _Node | None:
    frames: list[dict[str, Any]] = []
    previous = ""
    for line in lines:
        if _GO_GOROUTINE.match(line) and frames:
            break  # only the first goroutine: the one that failed
        found = _GO_FILE.match(line)
        if found and previous.strip() and not previous[:1].isspace():
            function = previous.strip().removeprefix("created by ")
            function = re.sub(r" in goroutine \d+$", "", function)
            function = re.sub(r"\([^()]*\)$", "", function)
            frames.append(
                {
                    "platform": "go",
                    "filename": found["file"],
                    "function": function,
                    "lineno": int(found["line"]),
                }
            )
        previous = line
    if not frames:
        return None
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("panic: "):
        node = _Node("panic", first.removeprefix("panic: ").removesuffix(" [recovered]"), None)
    else:
        node = _Node(_UNKNOWN_TYPE, first, None)
    node.frames = _oldest_first(frames)
    return node
