"""Recover a function's qualified name from its source file.

A live frame knows its function's ``co_qualname`` (``Cart.total``, ``handler.<locals>.inner``)
on Python 3.11+, but traceback text only prints ``co_name`` (``total``, ``inner``).  Given the
file's lines and the frame's line number, ``qualname`` finds the enclosing ``def``/``class``
scopes and returns the name a live frame would have had, so frames from both sources agree.

Usage::

    from posthog_otel.errors.frames import source_lines
    from posthog_otel.errors.qualnames import qualname

    lines = source_lines("/srv/app/cart.py")
    qualname("/srv/app/cart.py", lines, 42, "total")  # -> "Cart.total"

Standard library only.  Parsed files are cached per path (a few dozen at most) and reparsed
when the lines object changes.
"""

from __future__ import annotations

import ast

__all__ = ["qualname"]

# (first line, last line, qualified name, is a function) of every def and class in a file
_Scope = tuple[int, int, str, bool]
_CACHE_LIMIT = 64
_scope_cache: dict[str, tuple[list[str], list[_Scope]]] = {}


def qualname(path: str, lines: list[str], lineno: int, name: str) -> str:
    """Recover ``co_qualname`` for a frame known only by file, line and ``co_name``."""
    enclosing = sorted(
        (scope for scope in _scopes(path, lines) if scope[0] <= lineno <= scope[1]), reverse=True
    )
    for scope in enclosing:
        if scope[2].rpartition(".")[2] == name:
            return scope[2]
    if name.startswith("<") and name != "<module>" and enclosing:
        _, _, outer, is_function = enclosing[0]
        return f"{outer}.<locals>.{name}" if is_function else f"{outer}.{name}"
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
                name = prefix + node.name
                scopes.append((node.lineno, node.end_lineno or node.lineno, name, is_function))
                pending.append((node, name + (".<locals>." if is_function else ".")))
            else:
                pending.append((node, prefix))
    if len(_scope_cache) >= _CACHE_LIMIT:
        _scope_cache.clear()
    _scope_cache[path] = (lines, scopes)
    return scopes
