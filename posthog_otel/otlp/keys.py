"""Every attribute key the OTLP layer looks for, in one place.

The bridge keeps identity, marker and exception keys past its attribute limit; the sink links
rows to a person and a session the way PostHog's own OTLP ingestion does. The OTLP layer sits
below ``spans/`` (see ``posthog_otel/otlp/__init__.py``), so the span marker key the mapping
writes is spelled here for the reader too; a test checks both spellings agree.

Usage::

    if key.startswith(ALWAYS_KEPT): ...
    person = first_of(PERSON_KEYS, record_attributes, resource_attributes)
"""

from __future__ import annotations

__all__ = ["ALWAYS_KEPT", "EVENT_ATTRIBUTE", "PERSON_KEYS", "SESSION_KEYS"]

#: The attribute that marks a span or log record as a PostHog event (``capture_span``).
EVENT_ATTRIBUTE = "posthog.event"

#: Attribute key prefixes kept past the attribute limit: identity, the event marker, exceptions.
ALWAYS_KEPT = ("posthog", "user.id", "enduser.id", "session.id", "sessionId", "exception.")

#: Keys PostHog's OTLP ingestion links a person by (record first, then resource), in order.
PERSON_KEYS = ("posthogDistinctId", "posthog.distinct_id", "user.id")

#: Keys PostHog's OTLP ingestion links a session by, in order.
SESSION_KEYS = ("sessionId", "session.id", "posthog.session_id")
