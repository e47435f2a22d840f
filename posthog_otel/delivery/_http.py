"""``requests`` and the deadline session, imported on the first send, safely across ``fork``.

Importing ``requests`` takes about 50 ms and 5 MiB, so a client imports it only when it first
posts a batch (on its sender thread), not when it is built. An import that a ``fork`` cuts in
half would leave the child a module lock held by a thread that does not exist there (and a
half-initialised module): a pre-forked server whose master had just started its first send
would hand that to every worker. So the import runs under one lock that every ``fork``
acquires first (``os.register_at_fork``): a fork waits for an import in progress to finish,
and the child starts with ``requests`` either fully imported or not at all.

Usage (what :mod:`.sender` does)::

    http = load()               # imports once; later calls return at once
    http.requests.exceptions.ReadTimeout, http.DeadlineSession(), http.Watch(deadline)
"""

from __future__ import annotations

import os
import threading
from types import ModuleType

__all__ = ["load"]

_lock = threading.Lock()
_loaded: ModuleType | None = None


def load() -> ModuleType:
    """The :mod:`.deadline` module (``requests``, ``DeadlineSession``, ``Watch``), imported
    on the first call under the fork-safe lock."""
    loaded = _loaded
    if loaded is not None:
        return loaded
    return _load_locked()


def _load_locked() -> ModuleType:
    global _loaded
    with _lock:
        if _loaded is None:
            from . import deadline

            _loaded = deadline
        return _loaded


if hasattr(os, "register_at_fork"):  # a fork waits for an import in progress to finish
    os.register_at_fork(before=_lock.acquire, after_in_parent=_lock.release,
                        after_in_child=_lock.release)  # fmt: skip
