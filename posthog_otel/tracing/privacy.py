"""What an exported span may carry: the client's privacy rules applied to span attributes.

The traces export sends spans as the SDK recorded them, except:

* privacy mode (``ai_privacy_mode``/``privacy_mode``): no GenAI content attribute
  (:func:`~posthog_otel.genai_rules.is_genai_content`) on the span or its events, and a GenAI
  span event (``gen_ai.user.message``, ``gen_ai.choice``...) keeps only its metadata
  attributes;
* ``exclude_properties``: an attribute whose name matches is left out of the span and its
  events, and so are the identity and tag attributes the exclusion names, under every spelling
  (:func:`~posthog_otel._identity.excluded_attribute`) — as for events and exported logs.

Usage::

    rule = ExportRule(privacy=settings.ai_privacy, excluded=name_matcher(patterns))
    rule.active                                  # False: spans go out unchanged
    rule.span_attributes(span.attributes)        # the attributes to write
    rule.event_attributes(event.name, event.attributes)
    rule.allows("posthogDistinctId")            # may the processor stamp it?
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._identity import excluded_attribute
from ..genai_rules import is_genai_content, private_attributes

__all__ = ["ExportRule"]


class ExportRule:
    """See the module docstring."""

    def __init__(self, *, privacy: bool = False, excluded: Callable[[str], bool] | None = None):
        self.privacy = privacy
        self._left_out = excluded_attribute(excluded) if excluded is not None else None
        self.active = privacy or excluded is not None

    def allows(self, key: str) -> bool:
        left_out = self._left_out
        if left_out is not None and left_out(key):
            return False
        return not (self.privacy and is_genai_content(key))

    def span_attributes(self, attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        return self._filter(attributes, None)

    def event_attributes(
        self, name: str, attributes: Mapping[str, Any] | None
    ) -> Mapping[str, Any] | None:
        return self._filter(attributes, name)

    def _filter(
        self, attributes: Mapping[str, Any] | None, event_name: str | None
    ) -> Mapping[str, Any] | None:
        if not attributes:
            return attributes
        if self.privacy:
            private = private_attributes(attributes, event_name=event_name)
            if private is not None:
                attributes = private
        left_out = self._left_out
        if left_out is not None and any(left_out(key) for key in attributes):
            attributes = {key: value for key, value in attributes.items() if not left_out(key)}
        return attributes
