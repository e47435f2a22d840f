"""Parse stack traces printed by Java, Node.js and Go programs, on a best-effort basis.

Traces from other languages reach us through the OTLP bridge as ``exception.stacktrace``
text.  Each parser here looks for its language's frame lines and returns None when it finds
none, so the caller can try the next one:

* Java (and Kotlin, Scala, ...): ``Type: message`` headers, ``at pkg.Class.method(File.java:12)``
  frames and ``Caused by:`` chains (``Suppressed:`` blocks are skipped);
* Node.js: ``at fn (file.js:10:5)`` / ``at file.js:10:5`` frames under the message, and
  built-in frames without a file (``at JSON.parse (<anonymous>)``,
  ``at async Promise.all (index 0)``, ``at Array.map (native)``);
* Go: ``panic: ...`` with function / ``file.go:12 +0x1d`` line pairs of the first goroutine.

These traces print the raising frame first; frames are returned oldest first, as PostHog
wants them.  Every frame says whether it is ``in_app``, by its language's conventions
(:mod:`.foreign_in_app`).

Usage::

    from posthog_otel.errors.other_languages import parse_java, parse_node, parse_go

    lines = stack_text.splitlines()
    root = parse_java(lines) or parse_node(lines) or parse_go(lines)

The text comes from other processes, so every line is read in time linear in its length:
patterns have no nested or competing unbounded quantifiers, and Node's ``at fn (location)``
lines are split with string methods. Lines over ``MAX_LINE_CHARS`` characters are never read
as frames (they stay part of the message), type names over 512 characters are not read as
types, and frames stop being collected past ``MAX_FRAMES`` per exception (the ones nearest the
raise are kept).  Imports only the standard library and its sibling
modules.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from .entries import UNKNOWN_TYPE, ExceptionNode, split_type_name
from .foreign_in_app import go_in_app, java_in_app, node_in_app
from .frames import MAX_FRAMES

__all__ = ["MAX_LINE_CHARS", "parse_go", "parse_java", "parse_node"]

MAX_LINE_CHARS = 8192  # longer lines are never frames

_JAVA_FRAME = re.compile(
    r"^\s+at (?:[^\s(]*/)?(?P<cls>[^\s(/]+)\.(?P<fn>[^\s.(/]+)\((?P<loc>[^()]*)\)\s*$"
)
_JAVA_HEADER = re.compile(
    r'^(?:Exception in thread "[^"]*" )?(?P<caused>Caused by: )?'
    r"(?P<type>[A-Za-z_$][\w$.]{0,511})(?::\s?(?P<value>.*))?$"
)
_JAVA_SOURCE_SUFFIXES = (".java", ".kt", ".scala", ".groovy")
_NO_WHITESPACE = re.compile(r"\S+")
_NODE_LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)$")
_GO_FILE = re.compile(r"^\s+(?P<file>\S.*?\.go):(?P<line>\d+)(?: \+0x[0-9a-fA-F]+)?\s*$")
_GO_GOROUTINE = re.compile(r"^goroutine \d+ \[")
_GO_GOROUTINE_SUFFIX = re.compile(r" in goroutine \d+$")
_GO_ARGUMENTS = re.compile(r"\([^()]*\)$")


def parse_java(lines: list[str]) -> ExceptionNode | None:
    """The outermost exception of a JVM stack trace, its ``Caused by:`` chain linked."""
    nodes: list[ExceptionNode] = []
    skipping = False  # inside a "Suppressed:" block, which is not part of the cause chain
    for line in lines:
        if not line.strip():
            continue
        if line[:1].isspace():
            skipping = skipping or line.lstrip().startswith("Suppressed: ")
            found = _JAVA_FRAME.match(line) if len(line) <= MAX_LINE_CHARS else None
            if found and nodes and not skipping and len(nodes[-1].frames) < MAX_FRAMES:
                file, _, lineno = found["loc"].partition(":")
                frame: dict[str, Any] = {"platform": "java", "function": found["fn"]}
                frame["module"] = found["cls"]
                frame["in_app"] = java_in_app(found["cls"])
                if file.endswith(_JAVA_SOURCE_SUFFIXES):
                    frame["filename"] = file
                if lineno.isdigit():
                    frame["lineno"] = int(lineno)
                nodes[-1].frames.append(frame)
            continue
        header = _JAVA_HEADER.match(line)
        if header and (not nodes or header["caused"]):
            skipping = False
            module, name = split_type_name(header["type"])
            nodes.append(ExceptionNode(name, header["value"] or "", module))
        elif nodes and not nodes[-1].frames and not skipping:
            nodes[-1].value += "\n" + line
    if not any(node.frames for node in nodes):
        return None
    for node in nodes:
        node.frames = _oldest_first(node.frames)
    for outer, inner in itertools.pairwise(nodes):
        outer.cause, outer.cause_source = inner, "__cause__"
    return nodes[0]


def parse_node(lines: list[str]) -> ExceptionNode | None:
    """The exception of a Node.js ``error.stack``: message lines, then ``at`` frames."""
    head: list[str] = []
    frames: list[dict[str, Any]] = []
    for line in lines:
        call = _node_call(line) if len(line) <= MAX_LINE_CHARS else None
        if call is None:
            if not frames and line.strip():
                head.append(line)
            continue
        function, where = call
        location = _NODE_LOCATION.match(where)
        if location is not None and len(frames) < MAX_FRAMES:
            frames.append(
                {
                    "platform": "node:javascript",
                    "filename": location["file"],
                    "function": function or "<anonymous>",
                    "lineno": int(location["line"]),
                    "colno": int(location["col"]),
                    "in_app": node_in_app(location["file"]),
                }
            )
        elif function and _is_node_builtin(where):
            frames.append(
                {
                    "platform": "node:javascript",
                    "filename": where,
                    "function": function,
                    "in_app": False,
                }
            )
    if not frames:
        return None
    node = _headline(head[0] if head else "")
    node.value = "\n".join([node.value, *head[1:]])
    node.frames = _oldest_first(frames)
    return node


def parse_go(lines: list[str]) -> ExceptionNode | None:
    """The panic of a Go program's crash output, with the failing goroutine's frames."""
    frames: list[dict[str, Any]] = []
    previous = ""
    for line in lines:
        if (_GO_GOROUTINE.match(line) and frames) or len(frames) >= MAX_FRAMES:
            break  # only the first goroutine: the one that failed
        found = _GO_FILE.match(line) if len(line) <= MAX_LINE_CHARS else None
        if found and previous.strip() and not previous[:1].isspace():
            function = previous.strip().removeprefix("created by ")
            function = _GO_GOROUTINE_SUFFIX.sub("", function)
            function = _GO_ARGUMENTS.sub("", function)
            frames.append(
                {
                    "platform": "go",
                    "filename": found["file"],
                    "function": function,
                    "lineno": int(found["line"]),
                    "in_app": go_in_app(function, found["file"]),
                }
            )
        previous = line
    if not frames:
        return None
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("panic: "):
        node = ExceptionNode(
            "panic", first.removeprefix("panic: ").removesuffix(" [recovered]"), None
        )
    else:
        node = ExceptionNode(UNKNOWN_TYPE, first, None)
    node.frames = _oldest_first(frames)
    return node


def _node_call(line: str) -> tuple[str | None, str] | None:
    """``(function or None, location)`` of a Node frame line, or None for other lines.

    Accepts ``<indent>at [async ]fn (location)`` and ``<indent>at [async ]location``; the
    function is everything before the first `` (`` and the location runs to the last ``)``.
    Split with string methods: a regex with a lazy function and a greedy location tries every
    `` (`` against every ``)`` and takes quadratic time on hostile lines.
    """
    if not line[:1].isspace():
        return None
    body = line.lstrip()
    if not body.startswith("at "):
        return None
    body = body[len("at ") :]
    # "async " is a marker when what follows reads as a frame, else part of the function name
    candidates = [body[len("async ") :], body] if body.startswith("async ") else [body]
    for text in candidates:
        text = text.rstrip()
        opening = text.find(" (", 1)  # the function name is never empty
        if text.endswith(")") and 0 < opening < len(text) - 3:
            return text[:opening], text[opening + 2 : -1]
        if _NO_WHITESPACE.fullmatch(text):
            return None, text
    return None


def _is_node_builtin(where: str) -> bool:
    """A location V8 prints for frames with no file: ``<anonymous>``, ``native``, ``index N``
    (the element of ``Promise.all`` / ``Promise.any`` that failed)."""
    if where in ("<anonymous>", "native"):
        return True
    return where.startswith("index ") and where[len("index ") :].isdigit()


def _headline(text: str) -> ExceptionNode:
    """A node for a ``Type: message`` line (or just a message)."""
    found = _JAVA_HEADER.match(text)
    if found is None or found["caused"]:
        return ExceptionNode(UNKNOWN_TYPE, text.strip(), None)
    module, name = split_type_name(found["type"])
    return ExceptionNode(name, found["value"] or "", module)


def _oldest_first(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Foreign traces print the raising frame first; PostHog wants it last."""
    return frames[::-1][-MAX_FRAMES:]
