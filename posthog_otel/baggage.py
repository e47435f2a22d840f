"""Deprecated alias of :mod:`posthog_otel.propagation.baggage` (kept for one release).

from posthog_otel.propagation.baggage import stats

The identity member keys it used to define (``DISTINCT_ID_KEY``, ``SESSION_ID_KEY``,
``WINDOW_ID_KEY``) are derived here from :mod:`posthog_otel._identity`, where every spelling
of an identity field now lives (``DISTINCT_ID.attribute`` and so on).
"""

from __future__ import annotations

import warnings

from . import _identity
from .propagation.baggage import *  # noqa: F403
from .propagation.baggage import __all__ as _moved

DISTINCT_ID_KEY = _identity.DISTINCT_ID.attribute
SESSION_ID_KEY = _identity.SESSION_ID.attribute
WINDOW_ID_KEY = _identity.WINDOW_ID.attribute

__all__ = [*_moved, "DISTINCT_ID_KEY", "SESSION_ID_KEY", "WINDOW_ID_KEY"]

warnings.warn(
    "posthog_otel.baggage is deprecated; import from posthog_otel.propagation.baggage",
    DeprecationWarning,
    stacklevel=2,
)
