"""Exception trees and their flattening into PostHog's ``$exception_list`` entries.

Both sources of exceptions (live objects, stack-trace text) first build a tree of
``ExceptionNode``: each exception with its frames, its group members and its cause.
``flatten`` then lists them in PostHog's order (outermost first, then group members, then the
cause) and assigns each entry its ``mechanism`` (handled, chained, parent and exception ids).
The naming helpers (``type_name``, ``split_type_name``, ...) give every source the same
``type``/``module`` split.

Usage::

    from posthog_otel.errors.entries import ExceptionNode, flatten

    outer = ExceptionNode("RuntimeError", "checkout failed", None)
    outer.cause = ExceptionNode("KeyError", "'sku'", None)
    outer.cause_source = "__cause__"
    entries = flatten(outer, handled=False)
    # [RuntimeError (generic), KeyError (chained, parent_id=0, source="__cause__")]

Standard library only.
"""

from __future__ import annotations

import itertools
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
    cause_source: str = "__context__"


def flatten(root: ExceptionNode, *, handled: bool) -> list[dict[str, Any]]:
    """Entries in PostHog's order: each exception, then its group members, then its cause."""
    entries: list[dict[str, Any]] = []
    ids = itertools.count()

    def visit(node: ExceptionNode, parent_id: int | None, source: str) -> None:
        if len(entries) >= MAX_ENTRIES:
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


def bare_entry(type_: str, value: str, module: str | None, handled: bool) -> dict[str, Any]:
    """An entry without frames, for when nothing better can be said."""
    mechanism = {"type": "generic", "handled": handled}
    return {"type": type_, "value": value, "module": module, "mechanism": mechanism}


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
    return module if isinstance(module, str) and module != "builtins" else None


def safe_str(exc: object) -> str:
    """``str(exc)``, or a placeholder when that raises."""
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__} object>"


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
    return None if module == "builtins" else module
