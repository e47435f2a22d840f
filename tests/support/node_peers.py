"""The Node.js packages of tests/peers/node, installed once into a cache outside the clone.

``node_modules()`` runs ``npm ci`` (exact versions from the committed package-lock.json) into
``~/.cache/posthog-otel/node/<hash of the lock file>`` (``POSTHOG_OTEL_NODE_CACHE`` moves it),
so a second run costs nothing. Without node or npm, or when the install fails, tests skip with
the reason; in CI (``CI=true``) or with ``POSTHOG_OTEL_REQUIRE_NODE=1`` they fail instead.

    modules = node_modules()
    out = run_node("otel_export.js", "protobuf", url, env={"POSTHOG_API_KEY": KEY})
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parents[1] / "peers" / "node"
_LOCK = threading.Lock()


def node_required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or (
        os.environ.get("POSTHOG_OTEL_REQUIRE_NODE") == "1"
    )


def _unavailable(reason: str) -> None:
    if node_required():
        pytest.fail(f"Node.js peers are required here (CI / POSTHOG_OTEL_REQUIRE_NODE=1): {reason}")
    pytest.skip(reason)


def _cache_root() -> Path:
    configured = os.environ.get("POSTHOG_OTEL_NODE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "posthog-otel" / "node"


def node_modules() -> Path:
    """The installed node_modules folder for tests/peers/node (installing it the first time)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("the Node.js peer tests need node and npm on PATH")
    lock = (PEERS / "package-lock.json").read_bytes()
    digest = hashlib.sha256(lock + (PEERS / "package.json").read_bytes()).hexdigest()[:16]
    target = _cache_root() / digest
    done = target / ".installed"
    with _LOCK:
        if not done.exists():
            target.mkdir(parents=True, exist_ok=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(PEERS / name, target / name)
            result = subprocess.run(
                [str(npm), "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=target,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if result.returncode != 0:
                _unavailable(f"npm ci failed: {result.stderr.strip()[-2000:]}")
            done.write_text(digest)
    return target / "node_modules"


def run_node(script: str, *args: str, env: dict[str, str], timeout: float = 60) -> str:
    """Run tests/peers/node/<script> beside the cached packages (so stack traces show the
    cache's paths, not the clone's); its stdout (fails on exit != 0)."""
    folder = node_modules().parent
    shutil.copyfile(PEERS / script, folder / script)
    result = subprocess.run(
        [shutil.which("node") or "node", str(folder / script), *args],
        env={**os.environ, **env},
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout
