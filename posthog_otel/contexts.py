"""Deprecated alias of :mod:`posthog_otel.context` (kept for one release).

from posthog_otel import get_tags, scoped          # instead of posthog_otel.contexts
"""

from __future__ import annotations

import warnings

from .context import *  # noqa: F403
from .context import __all__ as __all__

warnings.warn(
    "posthog_otel.contexts is deprecated; import from posthog_otel or posthog_otel.context",
    DeprecationWarning,
    stacklevel=2,
)
