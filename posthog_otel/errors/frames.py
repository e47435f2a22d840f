"""Stack frames as PostHog wants them: one dict per frame, with path, module and "in app".

``FrameOptions`` says how frames are described; the helpers here turn a file path, function
name, module and line number into PostHog's frame dict (``python_frame``) and add the source
lines around it (``source_context``).  The live walker and the text parsers both build their
frames here, so a frame looks the same whichever source it came from.

Usage::

    from posthog_otel.errors.frames import (
        FrameOptions, python_frame, source_context, source_lines,
    )

    options = FrameOptions(project_root="/srv/app", in_app_modules=("myapp",))
    frame = python_frame("/srv/app/myapp/views.py", "checkout", "myapp.views", 42, options)
    frame.update(source_context(source_lines(frame["abs_path"]), 42, options.context_lines))
    # frame["filename"] == "myapp/views.py", frame["in_app"] is True

Standard library only.
"""

from __future__ import annotations

import linecache
import os
import re
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = [
    "DEFAULT_OPTIONS",
    "MAX_FRAMES",
    "MAX_LINE",
    "FrameOptions",
    "after_site_packages",
    "is_own",
    "is_pseudo_path",
    "module_from_path",
    "python_frame",
    "source_context",
    "source_lines",
]

MAX_FRAMES = 200  # frames per exception, keeping those nearest the raise
MAX_LINE = 1000  # characters kept of one source line

_PACKAGE = __name__.partition(".")[0]
# This module sits in a sub-package; the package's own directory is one level up.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SITE_PACKAGES = re.compile(r"[\\/](?:site|dist)-packages[\\/]")


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


DEFAULT_OPTIONS = FrameOptions()


def python_frame(
    path: str, function: str, module: str | None, lineno: int | None, options: FrameOptions
) -> dict[str, Any]:
    """A frame without its source context; the caller adds that."""
    abs_path = path if is_pseudo_path(path) else os.path.abspath(path)
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


def source_lines(path: str, module_globals: dict[str, Any] | None = None) -> list[str]:
    """The lines of a source file (through ``linecache``); empty when it cannot be read."""
    try:
        return linecache.getlines(path, module_globals)
    except Exception:
        return []


def source_context(lines: list[str], lineno: int | None, wanted: int) -> dict[str, Any]:
    """``pre_context``, ``context_line`` and ``post_context`` of line ``lineno`` (1-based)."""
    if lineno is None or not 0 < lineno <= len(lines):
        return {"pre_context": [], "context_line": None, "post_context": []}
    wanted = max(wanted, 0)

    def clean(found: Iterable[str]) -> list[str]:
        return [line.rstrip("\r\n")[:MAX_LINE] for line in found]

    return {
        "pre_context": clean(lines[max(lineno - 1 - wanted, 0) : lineno - 1]),
        "context_line": clean([lines[lineno - 1]])[0],
        "post_context": clean(lines[lineno : lineno + wanted]),
    }


def is_pseudo_path(path: str) -> bool:
    """Whether ``path`` names no file (empty, ``<string>``, ``<frozen os>``, ...)."""
    return not path or (path.startswith("<") and path.endswith(">"))


def after_site_packages(path: str) -> str | None:
    """The part of ``path`` after its last ``site-packages``/``dist-packages``, if any."""
    matches = list(_SITE_PACKAGES.finditer(path))
    return path[matches[-1].end() :] if matches else None


def is_own(path: str, module: str | None) -> bool:
    """Whether a frame belongs to this package (never "in app", left out of stacks)."""
    if module and (module == _PACKAGE or module.startswith(_PACKAGE + ".")):
        return True
    return not is_pseudo_path(path) and _is_under(os.path.abspath(path), _PACKAGE_DIR)


def module_from_path(path: str) -> str | None:
    """The import name of a file, from the longest ``sys.path`` entry that holds it."""
    if path.startswith("<frozen ") and path.endswith(">"):
        return path[len("<frozen ") : -1]
    if is_pseudo_path(path) or not path.endswith(".py"):
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


def _is_under(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/\\") + os.sep)


def _relative_to(path: str, root: str) -> str:
    return path[len(root.rstrip("/\\")) + 1 :]


@cache
def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    found = {paths.get("stdlib"), paths.get("platstdlib"), os.path.dirname(os.__file__)}
    return tuple(os.path.abspath(path) for path in found if path)


@cache
def _normalized_root(root: str) -> str:
    return os.path.abspath(root)


def _in_app(abs_path: str, module: str | None, options: FrameOptions) -> bool | None:
    if is_own(abs_path, module):
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
    if is_pseudo_path(abs_path):
        return abs_path
    in_site = after_site_packages(abs_path)
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
