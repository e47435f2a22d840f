"""Every attribute key the OTLP layer looks for, in one place.

The bridge keeps identity, marker and exception keys past its attribute limit; the sink links
rows to a person and a session the way PostHog's own OTLP ingestion does. Every identity
spelling comes from :mod:`posthog_otel._identity`.

Usage::

    if key.startswith(ALWAYS_KEPT): ...                 # keep it past the limit
    for holder in (record_attributes, resource_attributes):
        person = next((holder[key] for key in PERSON_KEYS if holder.get(key)), None)
"""

from __future__ import annotations

from .._identity import DISTINCT_ID, EVENT_ATTRIBUTE, IDENTITY_KEY_PREFIXES, SESSION_ID

__all__ = ["ALWAYS_KEPT", "EVENT_ATTRIBUTE", "PERSON_KEYS", "SESSION_KEYS"]

#: Attribute key prefixes kept past the attribute limit: identity, the event marker, exceptions.
ALWAYS_KEPT = (*IDENTITY_KEY_PREFIXES, "exception.")

#: Keys PostHog's OTLP ingestion links a person by (record first, then resource), in order.
PERSON_KEYS = DISTINCT_ID.ingestion_keys

#: Keys PostHog's OTLP ingestion links a session by, in order.
SESSION_KEYS = SESSION_ID.ingestion_keys
