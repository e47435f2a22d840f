"""The one definition of PostHog's identity fields and every spelling of them.

A context carries a few identity values (distinct id, session id, window id, device id) next
to its tags. Each travels under several names: the span attribute and baggage member
(``posthog.session_id``), the ``X-POSTHOG-SESSION-ID`` header posthog-js sends, the event
property PostHog reads (``$session_id``), PostHog's own OTLP ingestion name (``sessionId``)
and the OpenTelemetry semantic-convention names other SDKs write (``session.id``). Every module
that reads or writes one of those names (contexts, baggage codec, propagator, span stamping,
span mapping, client, bridge, sink) derives it from :data:`FIELDS`, so adding a field is one
entry here plus its public setter/getter in :mod:`posthog_otel.context.api`.

    from posthog_otel._identity import FIELDS, SESSION_ID

    SESSION_ID.attribute        # "posthog.session_id"
    SESSION_ID.header           # "X-POSTHOG-SESSION-ID"
    SESSION_ID.event_property   # "$session_id"
    event_properties({"session_id": "s1"})   # {"$session_id": "s1"}

This module is the bottom layer: it imports nothing from the package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "BY_ATTRIBUTE",
    "BY_HEADER",
    "DEVICE_ID",
    "DISTINCT_ID",
    "EVENT_ATTRIBUTE",
    "FIELDS",
    "IDENTIFYING",
    "IDENTITY_KEY_PREFIXES",
    "NATIVE_NAMES",
    "PREFIX",
    "SESSION_ID",
    "TAG_PREFIX",
    "WINDOW_ID",
    "Field",
    "event_properties",
    "excluded_attribute",
    "exclusion_names",
    "read_attributes",
    "stamp_attributes",
]

PREFIX = "posthog."
"""Every PostHog baggage member and span attribute starts with this."""

TAG_PREFIX = "posthog.tag."
"""A context tag ``plan`` travels as ``posthog.tag.plan``."""

EVENT_ATTRIBUTE = "posthog.event"
"""Marks a span or log record as a PostHog event (its value is the event name)."""


@dataclass(frozen=True)
class Field:
    """One identity field and its spellings."""

    name: str
    """Python name: the scope's key, ``get_context_<name>``, the sink's column."""
    attribute: str
    """Span/log attribute and W3C baggage member, ``posthog.<name>``."""
    header: str
    """HTTP header posthog-js (or one of our services) sends."""
    event_property: str | None
    """Event property PostHog reads; None for the distinct id (a top-level event field)."""
    native: str | None = None
    """PostHog's own OTLP ingestion attribute, stamped on spans when aliases are on."""
    aliases: tuple[str, ...] = ()
    """Other attribute names read on input (OpenTelemetry semantic conventions)."""
    ingestion_keys: tuple[str, ...] = ()
    """The attributes PostHog's own OTLP ingestion links by, in its order (the sink mirrors it)."""

    @property
    def input_keys(self) -> tuple[str, ...]:
        """Attribute names read back, most specific first."""
        native = (self.native,) if self.native else ()
        return (self.attribute, *native, *self.aliases)


DISTINCT_ID = Field(
    "distinct_id",
    "posthog.distinct_id",
    "X-POSTHOG-DISTINCT-ID",
    None,
    native="posthogDistinctId",
    aliases=("user.id", "enduser.id"),
    ingestion_keys=("posthogDistinctId", "posthog.distinct_id", "user.id"),
)
SESSION_ID = Field(
    "session_id",
    "posthog.session_id",
    "X-POSTHOG-SESSION-ID",
    "$session_id",
    native="sessionId",
    aliases=("session.id",),
    ingestion_keys=("sessionId", "session.id", "posthog.session_id"),
)
WINDOW_ID = Field("window_id", "posthog.window_id", "X-POSTHOG-WINDOW-ID", "$window_id")
DEVICE_ID = Field("device_id", "posthog.device_id", "X-POSTHOG-DEVICE-ID", "$device_id")

FIELDS: tuple[Field, ...] = (DISTINCT_ID, SESSION_ID, WINDOW_ID, DEVICE_ID)
"""Every identity field, in the order they are written (baggage members, headers)."""

IDENTIFYING: tuple[Field, ...] = (DISTINCT_ID, SESSION_ID)
"""The fields that make a context identified: with either, its root spans become events."""

BY_ATTRIBUTE: Mapping[str, Field] = {field.attribute: field for field in FIELDS}
"""``posthog.<name>`` -> field (baggage members and span attributes)."""

BY_HEADER: Mapping[str, Field] = {field.header.lower(): field for field in FIELDS}
"""Lower-cased header name -> field."""

NATIVE_NAMES: frozenset[str] = frozenset(field.native for field in FIELDS if field.native)
"""Ingestion aliases: stamped on spans for PostHog's OTLP endpoints, never event properties."""

IDENTITY_KEY_PREFIXES: tuple[str, ...] = (
    "posthog",  # every posthog.* attribute and the posthogDistinctId alias
    *(field.native for field in FIELDS if field.native and not field.native.startswith("posthog")),
    *(alias for field in FIELDS for alias in field.aliases),
)
"""Prefixes of every attribute that can carry identity (kept past attribute limits)."""

# (property, name) pairs of the fields that become event properties, for the hot path.
_PROPERTY_FIELDS = tuple((f.event_property, f.name) for f in FIELDS if f.event_property is not None)


def event_properties(
    ids: Mapping[str, str], into: dict[str, object] | None = None
) -> dict[str, object]:
    """The event properties (``$session_id``, ...) for identity values keyed by field name.

    With ``into``, properties already there win (a caller's explicit ``$session_id``).
    """
    props: dict[str, object] = {} if into is None else into
    for prop, name in _PROPERTY_FIELDS:
        value = ids.get(name)
        if value is not None and prop not in props:
            props[prop] = value
    return props


def stamp_attributes(ids: Mapping[str, str], native_aliases: bool = True) -> dict[str, str]:
    """Span attributes for identity values keyed by field name (``posthog.*`` and aliases)."""
    attributes: dict[str, str] = {}
    for field in FIELDS:
        value = ids.get(field.name)
        if value is None:
            continue
        text = str(value)
        attributes[field.attribute] = text
        if native_aliases and field.native:
            attributes[field.native] = text
    return attributes


def read_attributes(attributes: Mapping[str, object]) -> dict[str, str]:
    """Identity values read back from span, log or resource attributes, keyed by field name.

    For each field the first non-empty of its :attr:`Field.input_keys` wins.
    """
    ids: dict[str, str] = {}
    for field in FIELDS:
        for key in field.input_keys:
            value = attributes.get(key)
            if value is not None and value != "":
                ids[field.name] = str(value)
                break
    return ids


def exclusion_names(field_name: str) -> tuple[str, ...]:
    """Every name ``exclude_properties`` may use for an identity field (``distinct_id``,
    ``$session_id``, ``posthog.session_id``, ``sessionId``...)."""
    for field in FIELDS:
        if field.name == field_name:
            names = [field.event_property or field.name, field.name, field.attribute]
            if field.native:
                names.append(field.native)
            return tuple(names)
    return (field_name,)


def excluded_attribute(excluded: Callable[[str], bool]) -> Callable[[str], bool]:
    """Is an exported attribute left out under ``exclude_properties`` (``excluded``)?

    True for an attribute whose name matches; for an identity attribute (``posthog.<name>``
    or PostHog's ingestion name) when any name of its field matches; for a tag attribute
    (``posthog.tag.<key>``) when its key matches. Decisions are cached per name."""
    identity: dict[str, bool] = {}
    for field in FIELDS:
        hit = any(excluded(name) for name in exclusion_names(field.name))
        identity[field.attribute] = hit
        if field.native:
            identity[field.native] = hit
    cache: dict[str, bool] = {}

    def left_out(key: str) -> bool:
        found = cache.get(key)
        if found is None:
            found = identity.get(key, False) or excluded(key)
            if not found and key.startswith(TAG_PREFIX):
                found = excluded(key[len(TAG_PREFIX) :])
            if len(cache) < 4096:
                cache[key] = found
        return found

    return left_out
