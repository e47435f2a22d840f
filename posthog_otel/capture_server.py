"""Deprecated alias of :mod:`posthog_otel.testing.capture_server` (kept for one release).

from posthog_otel.testing.capture_server import CaptureServer

``python -m posthog_otel.capture_server [--port N]`` still serves, through the same entry point
as ``python -m posthog_otel.testing.capture_server``.
"""

from __future__ import annotations

import warnings

from .testing.capture_server import *  # noqa: F403
from .testing.capture_server import __all__ as __all__
from .testing.capture_server import main as main

warnings.warn(
    "posthog_otel.capture_server is deprecated; import from posthog_otel.testing.capture_server",
    DeprecationWarning,
    stacklevel=2,
)

if __name__ == "__main__":
    warnings.warn(  # shown by default: attributed to __main__
        "python -m posthog_otel.capture_server is deprecated; "
        "run python -m posthog_otel.testing.capture_server",
        DeprecationWarning,
        stacklevel=1,
    )
    main()
