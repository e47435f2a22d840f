"""Parse Python traceback text (what ``traceback.format_exception`` prints) into exceptions.

Understands chained exceptions ("The above exception was the direct cause ..." /
"During handling of the above exception ..."), exception groups with their ``|`` / ``+-``
margins (nested up to a fixed depth), SyntaxError locations, caret lines and "[Previous line
repeated N more times]".  Frames are described like live ones: when the file is readable here
and its line still matches the text, the source context and qualified function name are read
from it; with ``FrameOptions(local_source=False)`` (text from another machine) paths are only
reported as written.

Usage::

    from posthog_otel.errors.entries import flatten
    from posthog_otel.errors.frames import FrameOptions
    from posthog_otel.errors.python_text import parse_python

    root = parse_python(traceback_text, FrameOptions(local_source=False))
    entries = flatten(root, handled=False) if root is not None else []

Every pattern here is matched against one line at a time and runs in time linear in the
line's length.  Imports only the standard library and its sibling modules.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .entries import UNKNOWN_TYPE, ExceptionNode, split_type_name
from .frames import (
    MAX_FRAMES,
    MAX_LINE,
    FrameOptions,
    after_site_packages,
    module_from_path,
    python_frame,
    source_context,
    source_lines,
)
from .qualnames import qualname

__all__ = ["parse_python"]

_MAX_GROUP_NESTING = 64  # deepest exception group level read from text

_CAUSE_MARKERS = {
    "The above exception was the direct cause of the following exception:": "__cause__",
    "During handling of the above exception, another exception occurred:": "__context__",
}
_PY_FILE = re.compile(r'^\s*File "(?P<path>.*)", line (?P<lineno>\d+)(?:, in (?P<func>.+))?\s*$')
_PY_REPEAT = re.compile(r"^\s*\[Previous line repeated (?P<count>\d+) more times?\]\s*$")
_PY_CARET = re.compile(r"^\s*[~^]+\s*$")
_PY_EXC_LINE = re.compile(r"^(?P<type>[^\s:]{1,512})(?:: (?P<value>.*))?$")
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


def parse_python(text: str, options: FrameOptions) -> ExceptionNode | None:
    """The outermost exception of a Python traceback text, linked to its causes and members.

    Text without a traceback header still parses: ``"Type: message"`` is an exception that was
    never raised.  Returns None when the text describes no exception at all.
    """
    lines = text.splitlines()
    grouped = any(map(_GROUP_SEPARATOR.match, lines))
    items: list[str | _Members] = _nest_groups(lines) if grouped else list(lines)
    return _parse_chain(items, options)


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


def _parse_chain(items: list[str | _Members], options: FrameOptions) -> ExceptionNode | None:
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
    outermost: ExceptionNode | None = None
    for section, source in zip(sections, ["__context__", *sources], strict=True):
        node = _parse_section(section, options)
        if node is None:
            continue
        if outermost is not None:
            node.cause, node.cause_source = outermost, source
        outermost = node
    return outermost


def _parse_section(items: list[str | _Members], options: FrameOptions) -> ExceptionNode | None:
    lines = [item for item in items if isinstance(item, str)]
    members = next((item for item in items if isinstance(item, _Members)), None)
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index < len(lines) and lines[index].strip().endswith("Traceback (most recent call last):"):
        index += 1
    raw: deque[_RawFrame] = deque(maxlen=MAX_FRAMES)
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
                raw.extend(itertools.repeat(raw[-1], min(int(repeat["count"]), MAX_FRAMES)))
        elif raw and raw[-1].source is None and syntax_location is None:
            # the first source line under a frame; caret lines (~~~^^^) only underline it
            raw[-1].source = None if _PY_CARET.match(line) else line.strip() or None
    if index >= len(lines) and not raw:
        return None
    type_name, value = UNKNOWN_TYPE, ""
    if index < len(lines):
        head = _PY_EXC_LINE.match(lines[index])
        type_name, value = (
            (head["type"], head["value"] or "") if head else (UNKNOWN_TYPE, lines[index])
        )
        value = "\n".join([value, *lines[index + 1 :]])
    if syntax_location is not None:
        value = f"{value} ({os.path.basename(syntax_location[0])}, line {syntax_location[1]})"
    module, name = split_type_name(type_name)
    node = ExceptionNode(name, value, module)
    node.load_frames = lambda: [_text_frame(frame, options) for frame in raw]
    if members is not None or "Exception Group Traceback" in "".join(lines[:2]):
        node.is_group = True
    for block in members.blocks if members is not None else []:
        child = _parse_chain(block, options)
        if child is not None:
            node.children.append(child)
    return node


def _text_frame(raw: _RawFrame, options: FrameOptions) -> dict[str, Any]:
    if not options.local_source:
        return _foreign_frame(raw)
    module = module_from_path(raw.path)
    function = raw.function
    lines = source_lines(raw.path) if raw.source is not None else []
    lineno = raw.lineno
    if lineno is None or not 0 < lineno <= len(lines) or lines[lineno - 1].strip() != raw.source:
        lines = []  # the local file is missing or differs from the one that raised
    elif sys.version_info >= (3, 11):  # live frames use co_qualname there; text has co_name
        function = qualname(raw.path, lines, lineno, function)
    frame = python_frame(raw.path, function, module, lineno, options)
    frame.update(source_context(lines, lineno, options.context_lines))
    if not lines and raw.source is not None:
        frame["context_line"] = raw.source[:MAX_LINE]
    return frame


def _foreign_frame(raw: _RawFrame) -> dict[str, Any]:
    """A frame from another machine's traceback: only what the text says."""
    path = raw.path
    in_site = after_site_packages(path)
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
    frame["context_line"] = None if raw.source is None else raw.source[:MAX_LINE]
    frame["post_context"] = []
    return frame
