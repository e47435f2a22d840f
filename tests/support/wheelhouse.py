"""An offline package index made from what is installed here, for installs in a fresh venv.

Tests must not reach the network, yet a fresh venv has to install this project's
dependencies the way a user's ``pip install`` would. This module repacks installed
distributions (the test environment's own) as wheels in a folder that ``pip install
--no-index --find-links`` reads, so pip resolves dependencies for real: a requirement that is
not installed here is missing there too, and the install fails as it would for a user.

Only the dependency closure of the requested requirements is repacked (the test environment
holds hundreds of MiB of unrelated tools).

    from tests.support.wheelhouse import build_wheelhouse
    build_wheelhouse(tmp / "wheels", ["posthog-otel[bridge]", "flask", "setuptools>=77", "wheel"])
    # then: PIP_NO_INDEX=1 PIP_FIND_LINKS=tmp/wheels pip install .
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

__all__ = ["build_wheelhouse", "installed"]

# Files of an installed distribution that belong to the installation, not to the wheel.
_INSTALL_ONLY = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


def installed() -> dict[str, metadata.Distribution]:
    """Installed distributions by canonical name (the first on sys.path wins, as for imports)."""
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        found.setdefault(canonicalize_name(dist.metadata["Name"]), dist)
    return found


def _wanted(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    for extra in extras or {""}:
        try:
            if requirement.marker.evaluate({"extra": extra}):
                return True
        except UndefinedEnvironmentName:
            continue
    return False


def _closure(roots: Iterable[str], dists: dict[str, metadata.Distribution]) -> dict[str, set[str]]:
    """Canonical names needed by ``roots`` (requirement strings), with the extras asked of each."""
    needed: dict[str, set[str]] = {}
    todo = [Requirement(text) for text in roots]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        extras = set(requirement.extras)
        if name in needed and extras <= needed[name]:
            continue
        needed.setdefault(name, set()).update(extras)
        dist = dists.get(name)
        if dist is None:
            continue  # pip will say it is missing, as it would for a user
        for text in dist.requires or []:
            sub = Requirement(text)
            if _wanted(sub, needed[name]):
                todo.append(sub)
    return needed


def _tag(dist: metadata.Distribution) -> str:
    text = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]
    if not tags:
        raise RuntimeError(f"{dist.metadata['Name']} was not installed from a wheel")
    interpreters, abis, platforms = zip(*(tag.split("-") for tag in tags), strict=True)
    return "-".join(".".join(dict.fromkeys(part)) for part in (interpreters, abis, platforms))


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _repack(dist: metadata.Distribution, folder: Path) -> Path:
    name = canonicalize_name(dist.metadata["Name"]).replace("-", "_")
    version = dist.version
    target = folder / f"{name}-{version}-{_tag(dist)}.whl"
    info_dir = next(
        str(f).split("/")[0]
        for f in dist.files or []
        if str(f).split("/")[0].endswith(".dist-info")
    )
    base = Path(str(dist.locate_file("")))
    records: list[str] = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as wheel:
        for entry in dist.files or []:
            path = str(entry)
            if path.startswith("..") or "__pycache__" in path or path.endswith(".pyc"):
                continue  # console scripts (pip writes them from entry_points.txt), bytecode
            if path.startswith(info_dir + "/") and path.split("/", 1)[1] in _INSTALL_ONLY:
                continue
            source = base / path
            if not source.is_file():
                continue
            data = source.read_bytes()
            wheel.writestr(path, data)
            records.append(f"{path},{_digest(data)},{len(data)}")
        records.append(f"{info_dir}/RECORD,,")
        wheel.writestr(f"{info_dir}/RECORD", "\n".join(records) + "\n")
    return target


def build_wheelhouse(folder: Path, roots: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """Repack the installed closure of ``roots`` into ``folder``; returns what it could not find.

    ``skip``: names not to repack (this project itself: it is built from source instead).
    """
    folder.mkdir(parents=True, exist_ok=True)
    dists = installed()
    skipped = {canonicalize_name(name) for name in skip}
    missing = []
    for name in sorted(_closure(roots, dists)):
        if name in skipped:
            continue
        dist = dists.get(name)
        if dist is None:
            missing.append(name)
            continue
        _repack(dist, folder)
    return missing
