"""A new, empty venv that installs this checkout and its dependencies offline, as a user would.

The venv starts without the test environment's packages. ``pip install`` in it resolves for
real from a folder of wheels repacked from this test environment (:mod:`.wheelhouse`), never
the network. The checkout is copied (tracked and new files, not ``.venv``) as ``posthog-otel/``
in the work folder, next to where commands run: commands run outside the clone, as a user's
app does, so ``import posthog_otel`` finds the installed package, not the source tree.

    venv = FreshVenv.create(tmp_path, roots=["posthog-otel", "flask"])
    venv.run(["pip", "install", "./posthog-otel", "flask"])
    venv.run(["python", "-c", "import posthog_otel"])
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .wheelhouse import build_wheelhouse

__all__ = ["CLONE", "FreshVenv"]

ROOT = Path(__file__).resolve().parents[2]
CLONE = "posthog-otel"
# Always available offline: this project's user-facing extras and its build backend.
BASE_ROOTS = ("posthog-otel[bridge]", "setuptools>=77", "wheel")


def _copy_checkout(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@dataclass
class FreshVenv:
    folder: Path  # the work folder: commands run here; the clone is folder / CLONE
    env: dict[str, str]

    @classmethod
    def create(cls, folder: Path, roots: Iterable[str] = ()) -> FreshVenv:
        missing = build_wheelhouse(folder / "wheels", [*BASE_ROOTS, *roots], skip=["posthog-otel"])
        if missing:
            raise AssertionError(f"not installed in the test environment: {missing}")
        _copy_checkout(folder / CLONE)
        venv = folder / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("POSTHOG_", "OTEL_", "PIP_", "PYTHON", "VIRTUAL_ENV"))
        }
        dev_bin = str(Path(sys.executable).parent)
        path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != dev_bin]
        env.update(
            PATH=os.pathsep.join([str(venv / "bin"), *path]),
            VIRTUAL_ENV=str(venv),
            PIP_NO_INDEX="1",
            PIP_FIND_LINKS=str(folder / "wheels"),
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            # anything not sent to 127.0.0.1 goes to a dead loopback proxy
            HTTP_PROXY="http://127.0.0.1:9",
            HTTPS_PROXY="http://127.0.0.1:9",
            NO_PROXY="127.0.0.1,localhost",
            PYTHONUNBUFFERED="1",
        )
        return cls(folder, env)

    def run(
        self, command: Sequence[str], timeout: float = 180, cwd_clone: bool = False, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run in the work folder (``cwd_clone``: in the clone, as the examples say)."""
        return subprocess.run(
            list(command),
            cwd=self.folder / CLONE if cwd_clone else self.folder,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(
        self, command: Sequence[str], cwd_clone: bool = False, **env: str
    ) -> subprocess.Popen[str]:
        """Start a long-running command in its own process group."""
        return subprocess.Popen(
            list(command),
            cwd=self.folder / CLONE if cwd_clone else self.folder,
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
