"""The nearest AI ancestor of a span started in this process, for ``$ai_parent_id`` and for
deciding which AI span tops an LLM trace (``$ai_trace``).

An agent span often reaches its model calls through spans that are not AI spans (an HTTP
client span, a framework's own step): the parent of the chat span is then a plain span. The span
processor records, for every open span that has an AI span at or above it, the id of the
nearest such span, so a span started below finds it with one dictionary look-up of its parent.
Spans with no AI span above them cost one empty-dictionary check.

Usage (from :class:`~posthog_otel.spans.processor.PosthogSpanProcessor`)::

    nearest = ancestry.enter(span_id, local_parent_span_id, is_ai)   # at span start
    ancestry.leave(span_id)                                         # at span end
"""

from __future__ import annotations

__all__ = ["AiAncestry"]

MAX_OPEN = 100_000  # open spans tracked; beyond it a span finds only an AI direct parent


class AiAncestry:
    """Open span id -> the span id of the nearest AI span at or above it."""

    def __init__(self, capacity: int = MAX_OPEN) -> None:
        self._nearest: dict[int, int] = {}
        self._capacity = capacity

    def __len__(self) -> int:
        return len(self._nearest)

    def enter(self, span_id: int, parent_id: int, is_ai: bool) -> int | None:
        """Record a started span; returns its nearest AI ancestor's span id, if known.
        ``parent_id``: the span id of its parent in this process (0: none or remote)."""
        nearest = self._nearest
        above = nearest.get(parent_id) if nearest and parent_id else None
        below = span_id if is_ai else above  # what this span's children will find
        if below is not None and len(nearest) < self._capacity:
            nearest[span_id] = below
        return above

    def leave(self, span_id: int) -> None:
        if self._nearest:
            self._nearest.pop(span_id, None)
