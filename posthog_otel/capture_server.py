"""Deprecated alias of :mod:`posthog_otel.testing.capture_server` (kept for one release).

from posthog_otel.testing.capture_server import CaptureServer
"""

from __future__ import annotations

import warnings

from .testing.capture_server import *  # noqa: F403
from .testing.capture_server import __all__ as __all__

warnings.warn(
    "posthog_otel.capture_server is deprecated; import from posthog_otel.testing.capture_server",
    DeprecationWarning,
    stacklevel=2,
)
