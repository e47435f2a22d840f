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
    # frame["function"] == "checkout", frame["in_app"] is True (under project_root);
    # frame["filename"] == "myapp/views.py" once the package ``myapp`` is imported

Standard library only.
"""

from __future__ import annotations

import importlib.util
import linecache
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = [
    "DEFAULT_OPTIONS",
    "MAX_FRAMES",
    "MAX_LINE",
    "MAX_LINE_BYTES",
    "FrameOptions",
    "after_site_packages",
    "display_filename",
    "is_own",
    "is_pseudo_path",
    "module_from_path",
    "python_frame",
    "source_context",
    "source_lines",
]

MAX_FRAMES = 200  # frames per exception, keeping those nearest the raise
MAX_LINE = 1000  # characters kept of one source line of stack trace text
MAX_LINE_BYTES = 1024  # UTF-8 bytes of one source line read from a file (as posthog-python)

_PACKAGE = __name__.partition(".")[0]
# This module sits in a sub-package; the package's own directory is one level up.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DEMO = _PACKAGE + ".demo"
_DEMO_DIR = os.path.join(_PACKAGE_DIR, "demo")
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
    """A frame without its source context; the caller adds that.

    ``function`` may be qualified (``Cart.total``, ``handler.<locals>.inner``): the frame's
    ``function`` is its last part, as Python's ``co_name`` and PostHog's fingerprints have
    it, and a qualified name that says more is kept under ``qualname``.
    """
    name = function.rpartition(".")[2] or function or "<unknown>"
    frame: dict[str, Any] = {
        "platform": "python",
        "filename": display_filename(path, module),
        "abs_path": os.path.abspath(path) if path else None,
        "function": name,
        "module": module,
        "lineno": lineno,
    }
    if function and function != name:
        frame["qualname"] = function
    in_app = _in_app(frame["abs_path"], module, options)
    if in_app is not None:
        frame["in_app"] = in_app
    return frame


def display_filename(path: str, module: str | None) -> str | None:
    """The ``filename`` PostHog shows and fingerprints: the path from the top package's parent.

    ``json/decoder.py`` for module ``json.decoder``; just the file's name for a top-level
    module (``__init__.py`` for ``json``, ``app.py`` for ``__main__``); the path itself when
    the module is unknown or its top package has no file.
    """
    if not path or not module:
        return path or None
    if path.endswith(".pyc"):
        path = path[:-1]
    top = module.partition(".")[0]
    if top == module:
        return os.path.basename(path)
    top_file = getattr(sys.modules.get(top), "__file__", None)
    if not isinstance(top_file, str) or not top_file:
        return path
    parent = top_file.rsplit(os.sep, 2)[0]
    return path.split(parent, 1)[-1].lstrip(os.sep) or None


def source_lines(path: str, module_globals: dict[str, Any] | None = None) -> list[str]:
    """The lines of a source file (through ``linecache``); empty when it cannot be read."""
    try:
        return linecache.getlines(path, module_globals)
    except Exception:
        return []


def source_context(lines: list[str], lineno: int | None, wanted: int) -> dict[str, Any]:
    """``pre_context``, ``context_line`` and ``post_context`` of line ``lineno`` (1-based).

    A source line longer than :data:`MAX_LINE_BYTES` in UTF-8 is cut to fit (ending in
    ``...``) in the surrounding lines and left out (None) as the context line, which is what
    PostHog's fingerprints of posthog-python's frames are built on.
    """
    if lineno is None or not 0 < lineno <= len(lines):
        return {"pre_context": [], "context_line": None, "post_context": []}
    wanted = max(wanted, 0)

    def around(found: Iterable[str]) -> list[str]:
        return [_clipped(line.strip("\r\n")) for line in found]

    line = lines[lineno - 1].strip("\r\n")
    return {
        "pre_context": around(lines[max(lineno - 1 - wanted, 0) : lineno - 1]),
        "context_line": None if _too_long(line) else line,
        "post_context": around(lines[lineno : lineno + wanted]),
    }


def _too_long(line: str) -> bool:
    try:
        return len(line.encode("utf-8")) > MAX_LINE_BYTES
    except UnicodeError:
        return len(line) > MAX_LINE_BYTES


def _clipped(line: str) -> str:
    if not _too_long(line):
        return line
    try:
        kept = line.encode("utf-8")[: MAX_LINE_BYTES - 3].decode("utf-8", errors="ignore")
    except UnicodeError:
        kept = line[: MAX_LINE_BYTES - 3]
    return kept + "..."


def is_pseudo_path(path: str) -> bool:
    """Whether ``path`` names no file (empty, ``<string>``, ``<frozen os>``, ...)."""
    return not path or (path.startswith("<") and path.endswith(">"))


def after_site_packages(path: str) -> str | None:
    """The part of ``path`` after its last ``site-packages``/``dist-packages``, if any."""
    matches = list(_SITE_PACKAGES.finditer(path))
    return path[matches[-1].end() :] if matches else None


def is_own(path: str | None, module: str | None) -> bool:
    """Whether a frame belongs to this package or its instrumentors (never "in app").

    Judged by module name and by file location, so it holds however the package is
    installed: a wheel, an editable checkout (whose instrumentors live next to the package)
    or a directory on ``sys.path``.  The demo's services are the exception: they stand for
    the user's application.
    """
    if module and (module == _DEMO or module.startswith(_DEMO + ".")):
        return False
    if module and (module == _PACKAGE or module.startswith(_PACKAGE + ".")):
        return True
    if not path or is_pseudo_path(path):
        return False
    abs_path = os.path.abspath(path)
    if _is_under(abs_path, _DEMO_DIR):
        return False
    return any(_is_under(abs_path, root) for root in _own_dirs())


@cache
def _own_dirs() -> tuple[str, ...]:
    dirs = [_PACKAGE_DIR]
    try:
        spec = importlib.util.find_spec(_PACKAGE + ".instrumentors")
        locations = spec.submodule_search_locations if spec is not None else None
        dirs.extend(os.path.abspath(entry) for entry in locations or ())
    except Exception:
        pass
    return tuple(dict.fromkeys(dirs))


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


def _in_app(abs_path: str | None, module: str | None, options: FrameOptions) -> bool | None:
    """posthog-python's rule, except that this package's own frames are never in app.

    ``in_app_modules`` first; then site-/dist-packages are not in app and files under
    ``project_root`` (a plain prefix of the absolute path) are; anything else is left unset.
    """
    if is_own(abs_path, module):
        return False
    if module and any(module == p or module.startswith(p + ".") for p in options.in_app_modules):
        return True
    if abs_path is None:
        return None
    if _SITE_PACKAGES.search(abs_path):
        return False
    if options.project_root and abs_path.startswith(options.project_root):
        return True
    return None
