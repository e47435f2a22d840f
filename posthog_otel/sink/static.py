"""The viewer's stylesheet and script, served from ``/static/`` (no external assets).

The files live next to this module as package data (``assets/app.css``, ``assets/app.js``)
and are read once, on import. The script only refreshes the live event list: every two
seconds it asks ``/_live`` (same filters as the page) for the rendered rows and chart, and
swaps them in when something changed. Everything it inserts was escaped by the server; the
page's Content-Security-Policy allows scripts and styles from the sink itself only.

Usage::

    body, content_type = STATIC["/static/app.css"]
"""

from __future__ import annotations

from importlib import resources

__all__ = ["STATIC"]

_TYPES = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}


def _load() -> dict[str, tuple[bytes, str]]:
    assets = resources.files(__package__ or "posthog_otel.sink").joinpath("assets")
    return {
        f"/static/{name}": (assets.joinpath(name).read_bytes(), content_type)
        for name, content_type in _TYPES.items()
    }


STATIC: dict[str, tuple[bytes, str]] = _load()
