"""The built wheel installs one top-level package, with every sub-package and data file.

``pyproject.toml`` lists the packages explicitly (the repository's ``instrumentors/`` folder
is mapped to ``posthog_otel.instrumentors``), so a new sub-package left out of that list would
silently be missing from the wheel; this test builds a real wheel and compares.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_holds_only_posthog_otel_and_all_of_it(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("posthog_otel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"posthog_otel"}

    expected = {
        "posthog_otel/" + str(p.relative_to(ROOT / "posthog_otel"))
        for p in (ROOT / "posthog_otel").rglob("*.py")
    } | {"posthog_otel/instrumentors/" + p.name for p in (ROOT / "instrumentors").glob("*.py")}
    assert expected - set(names) == set()
    for data in ("py.typed", "instrumentors/py.typed", "sink/assets/app.css", "sink/assets/app.js"):
        assert f"posthog_otel/{data}" in names

    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    targets = [line.split("=", 1)[1].strip() for line in text.splitlines() if "=" in line]
    assert targets and all(t.startswith("posthog_otel.") for t in targets)
