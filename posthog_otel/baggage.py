"""Deprecated alias of :mod:`posthog_otel.propagation.baggage` (kept for one release).

from posthog_otel.propagation.baggage import stats
"""

from __future__ import annotations

import warnings

from .propagation.baggage import *  # noqa: F403
from .propagation.baggage import __all__ as __all__

warnings.warn(
    "posthog_otel.baggage is deprecated; import from posthog_otel.propagation.baggage",
    DeprecationWarning,
    stacklevel=2,
)
