"""Exception trees and their flattening into PostHog's ``$exception_list`` entries.

Both sources of exceptions (live objects, stack-trace text) first build a tree of
``ExceptionNode``: each exception with its frames, its group members and its cause.
``flatten`` then lists them in posthog-python's order (outermost first, then its cause, then
its group members) and assigns each entry its ``mechanism`` (handled, chained, parent and
exception ids).
The naming helpers (``type_name``, ``split_type_name``, ...) give every source the same
``type``/``module`` split.

Usage::

    from posthog_otel.errors.entries import ExceptionNode, flatten

    outer = ExceptionNode("RuntimeError", "checkout failed", None)
    outer.cause = ExceptionNode("KeyError", "'sku'", None)
    outer.cause_source = "cause"
    entries = flatten(outer, handled=False)
    # [RuntimeError (generic, exception_id=0, handled=False),
    #  KeyError (chained, exception_id=1, parent_id=0, source="cause")]

Standard library only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_ENTRIES",
    "UNKNOWN_TYPE",
    "ExceptionNode",
    "apply_overrides",
    "bare_entry",
    "flatten",
    "safe_str",
    "split_type_name",
    "type_module",
    "type_name",
]

MAX_ENTRIES = 50  # exceptions per list: bounds pathological chains and groups
UNKNOWN_TYPE = "Error"
_BUILTINS = ("builtins", "__builtins__")


@dataclass
class ExceptionNode:
    """One exception, whichever source it came from, before mechanisms are assigned."""

    type: str
    value: str
    module: str | None
    frames: list[dict[str, Any]] = field(default_factory=list)
    load_frames: Callable[[], list[dict[str, Any]]] | None = None  # deferred until emitted
    is_group: bool = False
    children: list[ExceptionNode] = field(default_factory=list)
    cause: ExceptionNode | None = None
    cause_source: str = "context"  # "cause" (raise ... from) or "context" (implicit)
    errno: Any = None  # OSError's errno, reported as mechanism.meta.errno.number
    synthetic: bool = False  # frames are the capturing call's stack: it was never raised


# Older spellings of a link, still accepted from the text parsers.
_SOURCES = {"__cause__": "cause", "__context__": "context"}


def flatten(
    root: ExceptionNode, *, handled: bool, mechanism_type: str = "generic"
) -> list[dict[str, Any]]:
    """Entries in posthog-python's order, ids and mechanisms.

    Depth first from the outermost exception: each exception, then its cause (or context)
    chain, then its group members. Every entry has an ``exception_id`` (its position);
    all but the first are ``chained`` to a ``parent_id`` with the link as ``source``
    (``cause``, ``context`` or ``member``), and only the first says whether it was handled.
    """
    entries: list[dict[str, Any]] = []

    def visit(node: ExceptionNode, parent_id: int | None, source: str) -> None:
        if len(entries) >= MAX_ENTRIES:
            return
        own_id = len(entries)
        mechanism: dict[str, Any] = {"exception_id": own_id}
        if node.errno is not None:
            mechanism["meta"] = {"errno": {"number": node.errno}}
        if parent_id is None:
            mechanism.update(type=mechanism_type, handled=handled)
        else:
            mechanism.update(source=source, parent_id=parent_id, type="chained")
        mechanism["synthetic"] = node.synthetic
        if node.is_group:
            mechanism["is_exception_group"] = True
        entry: dict[str, Any] = {
            "mechanism": mechanism,
            "module": node.module,
            "type": node.type,
            "value": node.value,
        }
        frames = node.load_frames() if node.load_frames is not None else node.frames
        if frames:
            entry["stacktrace"] = {"frames": frames, "type": "raw"}
        entries.append(entry)
        if node.cause is not None:
            visit(node.cause, own_id, _SOURCES.get(node.cause_source, node.cause_source))
        for child in node.children:
            visit(child, own_id, "member")

    visit(root, None, "")
    return entries


def bare_entry(type_: str, value: str, module: str | None, handled: bool) -> dict[str, Any]:
    """An entry without frames, for when nothing better can be said."""
    mechanism = {"exception_id": 0, "type": "generic", "handled": handled, "synthetic": False}
    return {"mechanism": mechanism, "module": module, "type": type_, "value": value}


def apply_overrides(entry: dict[str, Any], exc_type: str | None, message: str | None) -> None:
    """Let a caller-given type (possibly qualified) and message replace an entry's own."""
    module, name = split_type_name(str(exc_type or ""))
    # A bare name that agrees with the text keeps the module the text gave.
    if name and (module is not None or entry["type"] != name):
        entry["type"], entry["module"] = name, module
    if message is not None:
        entry["value"] = str(message)


def type_name(exc: object) -> str:
    """The qualified name of an exception's class."""
    cls = type(exc)
    name = getattr(cls, "__qualname__", None)
    return name if isinstance(name, str) else cls.__name__


def type_module(exc: object) -> str | None:
    """The module of an exception's class; None for builtins."""
    module = getattr(type(exc), "__module__", None)
    return module if isinstance(module, str) and module not in _BUILTINS else None


def safe_str(exc: object) -> str:
    """``str(exc)``, else ``repr(exc)``, else a placeholder (posthog-python's fallbacks)."""
    try:
        return str(exc)
    except Exception:
        pass
    try:
        return repr(exc)
    except Exception:
        return "<broken repr>"


def split_type_name(name: str) -> tuple[str | None, str]:
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
    return None if module in _BUILTINS else module
