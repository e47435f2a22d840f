"""The lowest posthog-python the posthog_python instrumentor supports, installed once into a
cache outside the clone, for running its tests against that version too.

``lowest_posthog_python()`` runs ``pip install --no-deps --target`` of posthog-python
:data:`LOWEST` into ``~/.cache/posthog-otel/posthog-python/<version>``
(``POSTHOG_OTEL_PYTHON_CACHE`` moves it); a second run costs nothing. Its dependencies are the
ones the dev install already has (the newest posthog-python's). When the install fails, tests
skip with the reason; in CI (``CI=true``) or with ``POSTHOG_OTEL_REQUIRE_LOWEST=1`` they fail.

    folder = lowest_posthog_python()
    subprocess.run([sys.executable, "-m", "pytest", ...], env={"PYTHONPATH": str(folder)})
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

LOWEST = "6.0.0"
_LOCK = threading.Lock()


def _required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or (
        os.environ.get("POSTHOG_OTEL_REQUIRE_LOWEST") == "1"
    )


def _cache_root() -> Path:
    configured = os.environ.get("POSTHOG_OTEL_PYTHON_CACHE")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "posthog-otel" / "posthog-python"


def lowest_posthog_python() -> Path:
    """A folder holding posthog-python :data:`LOWEST` (installed the first time)."""
    target = _cache_root() / LOWEST
    done = target / ".installed"
    with _LOCK:
        if not done.exists():
            target.mkdir(parents=True, exist_ok=True)
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--upgrade",
                    "--target",
                    str(target),
                    f"posthog=={LOWEST}",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if result.returncode != 0:
                reason = f"could not install posthog=={LOWEST}: {result.stderr.strip()[-2000:]}"
                if _required():
                    pytest.fail(reason)
                pytest.skip(reason)
            done.write_text(LOWEST)
    return target
