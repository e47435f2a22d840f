"""The runtime and operating system properties every event carries, as posthog-python sends them.

``$os`` is "Linux", "Mac OS X", "Windows", "FreeBSD" or ``sys.platform``; ``$os_version`` is the
distribution's version on Linux (``VERSION_ID`` of os-release, e.g. "12"), the product version
on macOS and Windows, the kernel release elsewhere; ``$os_distro`` is the distribution's name
on Linux ("Debian GNU/Linux") and absent elsewhere.

Usage::

    from ._platform import runtime_properties

    props.update(runtime_properties())     # computed once per process
"""

from __future__ import annotations

import functools
import platform
import sys
from pathlib import Path
from typing import Any

__all__ = ["os_properties", "runtime_properties"]

_OS_RELEASE_FILES = ("/etc/os-release", "/usr/lib/os-release")


@functools.cache
def runtime_properties() -> dict[str, Any]:
    """``$python_runtime``, ``$python_version``, ``$os``, ``$os_version`` (``$os_distro``)."""
    return {
        "$python_runtime": platform.python_implementation(),
        "$python_version": "{}.{}.{}".format(*sys.version_info[:3]),
        **os_properties(sys.platform),
    }


def os_properties(
    platform_name: str, os_release_files: tuple[str, ...] = _OS_RELEASE_FILES
) -> dict[str, str]:
    """The ``$os*`` properties for ``platform_name`` (a ``sys.platform`` value)."""
    distro = ""
    if platform_name.startswith("win"):
        name, version = "Windows", platform.win32_ver()[0]
    elif platform_name == "darwin":
        name, version = "Mac OS X", platform.mac_ver()[0]
    elif platform_name.startswith("linux"):
        release = _read_os_release(os_release_files)
        name, version, distro = "Linux", release.get("VERSION_ID", ""), release.get("NAME", "")
    elif platform_name.startswith("freebsd"):
        name, version = "FreeBSD", platform.release()
    else:
        name, version = platform_name, platform.release()
    props = {"$os": name, "$os_version": version or ""}
    if distro:
        props["$os_distro"] = distro
    return props


def _read_os_release(paths: tuple[str, ...]) -> dict[str, str]:
    """``KEY=value`` pairs of the first readable os-release file (quotes removed)."""
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        values: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.strip().partition("=")
            if not sep or key.startswith("#"):
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            values[key] = value
        return values
    return {}
