"""The bridge's log output: our log lines on stderr, one format for every worker process.

configure_logging(verbose=True)     # DEBUG and up; INFO and up otherwise
"""

from __future__ import annotations

import logging

__all__ = ["configure_logging"]


def configure_logging(verbose: bool) -> None:
    """Our log lines on stderr (each worker process calls this too)."""
    logger = logging.getLogger("posthog.otel")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(message)s")
        )
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
