"""The posthog_python instrumentor's tests, run again against the lowest posthog-python it
supports (the dev install has the newest): a subprocess with that version first on the path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from posthog_otel.instrumentors import posthog_python
from tests.support.posthog_python_lowest import LOWEST, lowest_posthog_python

ROOT = Path(__file__).resolve().parents[2]
SUITES = (
    "tests/unit/instrumentors/test_posthog_python.py",
    "tests/parity/test_posthog_python_instrumented.py",
)


def test_the_lowest_version_is_the_supported_lower_bound() -> None:
    bound = posthog_python._INSTRUMENTS[0].split(">=")[1].split(",")[0].strip()
    assert tuple(int(p) for p in LOWEST.split(".")[:2]) == tuple(int(p) for p in bound.split("."))


def test_instrumentor_suites_pass_on_the_lowest_posthog_python() -> None:
    folder = lowest_posthog_python()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}
    probe = subprocess.run(
        [sys.executable, "-c", "import posthog.version as v; print(v.VERSION)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert probe.stdout.strip() == LOWEST
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", *SUITES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
