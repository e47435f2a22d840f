"""``PosthogPropagator``: PostHog context across processes, as W3C baggage and X-POSTHOG headers.

Add it after the stock propagators, in code or by environment::

    OTEL_PROPAGATORS=tracecontext,baggage,posthog opentelemetry-instrument python app.py

    from opentelemetry.propagate import set_global_textmap
    from opentelemetry.propagators.composite import CompositePropagator
    set_global_textmap(CompositePropagator([
        TraceContextTextMapPropagator(), W3CBaggagePropagator(),
        PosthogPropagator(propagation_targets=["internal", "*.mycorp.com"]),
    ]))

**Inject** writes the current scope's identity values (distinct, session, window and device
id: :data:`posthog_otel._identity.FIELDS`) and tags as ``posthog.*`` members of the
``baggage`` header, merged into whatever baggage header is already in the carrier (other
members are kept as they are, in their order), and writes each identity value's
``X-POSTHOG-*`` header (``X-POSTHOG-DISTINCT-ID``, ...; when the value is printable ASCII;
otherwise only baggage carries it). Values set with plain
``opentelemetry.baggage.set_baggage("posthog.distinct_id", ...)`` are used where the scope has
none.

**Outbound policy (fail closed).** PostHog members and ``X-POSTHOG-*`` headers go out only
when the destination is known and is a propagation target
(:mod:`posthog_otel.propagation.targets`), or is the ``internal`` destination (a carrier that
stays inside your system). Otherwise nothing PostHog goes out: ``posthog.*`` members are
removed from the baggage header (others stay) and ``X-POSTHOG-*`` headers are removed from
mapping carriers. The destination is known when

1. the context carries it (:func:`with_destination`; our requests, httpx, urllib3, urllib and
   aiohttp instrumentors, Celery's (``internal``: the broker) and the
   ``posthog_otel.inject(headers, url=...)`` helper set it), or else
2. the current span is a recording HTTP CLIENT span (contrib's HTTP client instrumentations
   start one before they inject) with ``url.full`` / ``http.url`` / ``server.address`` /
   ``net.peer.name`` attributes.

An unknown destination (no span, an unsampled span, a custom transport) gets nothing:
``inject(headers, url="internal")`` opts a custom queue in.

**Interplay with the stock W3C baggage propagator** in the same composite: on inject the
stock one writes every OpenTelemetry baggage entry, ``posthog.*`` ones included; this
propagator then rewrites the header, dropping every ``posthog.*`` member it finds and adding
its own encoding of the same state (so there is never a double member, and a non-target gets
none). List ``posthog`` after ``baggage``: a stock propagator running after this one
overwrites the baggage header. Our requests/httpx instrumentors enforce the policy once more
just before the bytes leave, so for those clients order does not matter. On extract the stock
one copies inbound ``posthog.*`` members into OpenTelemetry baggage; this propagator removes
every ``posthog.*`` entry from the returned context's baggage (the Scope is the one trusted
copy), so ``trust_inbound`` cannot be bypassed through baggage and nothing is re-sent twice.

**Reserved keys.** Inbound tags whose key starts with ``$`` would land in events as PostHog's
own properties (``$set``, ``$groups``, ``$session_id``, ``$process_person_profile``...): they
are dropped (counted as ``inbound_reserved``, debug-logged) unless named in
``allow_reserved_tags``. The same rule applies to Celery task headers.

**Extract** reads the identity headers (``trust_inbound`` ``"all"`` or ``"headers"``) and the
``posthog.*`` baggage members (``"all"`` only); the headers win for identity. When anything is
found, the returned Context holds a new root (``fresh``) Scope with that state: extraction
happens at a process boundary, so it never inherits from a scope current in this process.
Nothing raises into the app; bad input is dropped and counted (``posthog_otel.propagation.baggage.stats()``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import baggage as otel_baggage
from opentelemetry.context import Context
from opentelemetry.propagators import textmap

from .. import _identity
from ..config import name_matcher
from ..context import Scope, context_with_scope, current_scope, runtime
from .baggage import (
    PREFIX,
    Encoded,
    count,
    encode,
    encoded_for,
    merge_header,
    parse_header,
    sanitize_header_value,
    state_from_entries,
)
from .destination import destination_of, is_internal
from .inbound import Extracted, recall, remember, seen_values
from .settings import PropagationSettings
from .targets import Targets

__all__ = [
    "BAGGAGE_HEADER",
    "DISTINCT_ID_HEADER",
    "SESSION_ID_HEADER",
    "WINDOW_ID_HEADER",
    "PosthogPropagator",
    "default_propagator",
    "find_posthog_propagator",
    "parts_of",
]

_logger = logging.getLogger("posthog.otel")

BAGGAGE_HEADER = "baggage"
DISTINCT_ID_HEADER = _identity.DISTINCT_ID.header
SESSION_ID_HEADER = _identity.SESSION_ID.header
WINDOW_ID_HEADER = _identity.WINDOW_ID.header
_IDENTITY_HEADERS = tuple(field.header for field in _identity.FIELDS)
_IDENTITY_LOWER = tuple(h.lower() for h in _IDENTITY_HEADERS)
# (field name, header, lower-cased header) for extract
_HEADER_FIELDS = tuple((f.name, f.header, f.header.lower()) for f in _identity.FIELDS)
_FIELDS = frozenset((BAGGAGE_HEADER, *_IDENTITY_HEADERS))

_get_current = runtime.get_current


# Getters that find a header whatever the case of the name asked (contrib's ASGI getter lower-
# cases it, its WSGI getter upper-cases it): asking again in lower case would only repeat the
# scan of the request's headers. Matched by exact type, so a subclass is asked both ways.
_CASE_INSENSITIVE_GETTERS = frozenset(
    {
        ("opentelemetry.instrumentation.asgi", "ASGIGetter"),
        ("opentelemetry.instrumentation.wsgi", "WSGIGetter"),
    }
)
_ignores_case_by_type: dict[type, bool] = {}


def _ignores_case(getter: object) -> bool:
    kind = type(getter)
    known = _ignores_case_by_type.get(kind)
    if known is None:
        known = (kind.__module__, kind.__qualname__) in _CASE_INSENSITIVE_GETTERS
        _ignores_case_by_type[kind] = known
    return known


def _one(value: str | None) -> tuple[str] | None:
    return None if value is None else (value,)


# -- carriers -----------------------------------------------------------------------------


def _read(carrier: Any, name: str) -> tuple[str, str | None]:
    """The key and value of header ``name`` in a mapping carrier (any case for plain dicts)."""
    if type(carrier) is dict or isinstance(carrier, Mapping):
        value = carrier.get(name)
        if value is None and type(carrier) is dict and len(carrier) <= 256:
            for key in carrier:
                if isinstance(key, str) and key.lower() == name:
                    return key, _as_text(carrier[key])
        return name, _as_text(value)
    return name, None


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    if isinstance(value, list | tuple):
        parts = [_as_text(v) for v in value]
        return ",".join(p for p in parts if p)
    return None


def _delete(carrier: Any, names: tuple[str, ...]) -> None:
    """Remove headers from a mutable mapping carrier (any case for plain dicts)."""
    if not isinstance(carrier, MutableMapping):
        return
    for name in names:
        if name in carrier:
            del carrier[name]
    if type(carrier) is dict:
        lowered = {n.lower() for n in names}
        for key in [k for k in carrier if isinstance(k, str) and k.lower() in lowered]:
            del carrier[key]


def _first_value(values: Any) -> str | None:
    """The first header value a getter returned, sanitised."""
    if isinstance(values, str | bytes | bytearray):
        return sanitize_header_value(values)
    for value in values:
        return sanitize_header_value(value)
    return None


def _strip_entries(ctx: Context) -> Context:
    """``ctx`` without ``posthog.*`` OpenTelemetry baggage entries."""
    entries = otel_baggage.get_all(ctx)
    if entries:
        for key in [k for k in entries if isinstance(k, str) and k.startswith(PREFIX)]:
            ctx = otel_baggage.remove_baggage(key, ctx)
    return ctx


# -- the propagator -----------------------------------------------------------------------


class PosthogPropagator(textmap.TextMapPropagator):
    """Carries PostHog identity, session, window and tags between services.

    ``trust_inbound``: ``"all"`` (default), ``"headers"`` or ``"none"``.
    ``propagation_targets``: patterns of destinations allowed to receive PostHog state
    (default ``["internal"]``; a list replaces it). ``exclude_tags``: tag keys (names or
    fnmatch patterns, any case, e.g. ``["email", "*_token"]``) never injected and ignored on
    extract. They fall back to ``POSTHOG_OTEL_TRUST_INBOUND`` /
    ``POSTHOG_OTEL_PROPAGATION_TARGETS`` / ``POSTHOG_OTEL_EXCLUDE_TAGS``. Invalid arguments
    raise ``ValueError``; an invalid environment value is logged and the strict choice used
    (``"none"``, ``["internal"]``), since this class is built by ``OTEL_PROPAGATORS`` at import.
    """

    def __init__(
        self,
        trust_inbound: str | None = None,
        propagation_targets: Any = None,
        *,
        exclude_tags: Any = None,
        allow_reserved_tags: Any = None,
        settings: PropagationSettings | None = None,
    ) -> None:
        if settings is None:
            settings = _settings(
                trust_inbound, propagation_targets, exclude_tags, allow_reserved_tags
            )
        self.settings = settings
        self.trust_inbound = settings.trust_inbound
        self.targets = Targets(settings.propagation_targets)
        self._excluded = name_matcher(settings.exclude_tags)
        self._cache_key = "posthog_otel.baggage.exclude:" + ",".join(settings.exclude_tags)

    def __repr__(self) -> str:
        excluded = (
            f", exclude_tags={list(self.settings.exclude_tags)!r}"
            if self.settings.exclude_tags
            else ""
        )
        return (
            f"PosthogPropagator(trust_inbound={self.trust_inbound!r}, "
            f"propagation_targets={list(self.targets.patterns)!r}{excluded})"
        )

    # -- outbound ---------------------------------------------------------------------------

    def propagated_tags(self, tags: Mapping[str, Any]) -> dict[str, Any]:
        """``tags`` without the ``exclude_tags`` (for carriers other than baggage)."""
        excluded = self._excluded
        if excluded is None:
            return dict(tags)
        return {k: v for k, v in tags.items() if not excluded(str(k))}

    def allows(self, context: Context | None = None) -> bool:
        """Whether PostHog state may go to the destination of ``context``.

        The one outbound rule: the internal destination, or a known destination that is a
        propagation target. An unknown destination gets nothing (fail closed).
        """
        if is_internal(context):
            return True
        host = destination_of(context)
        return host is not None and self.targets.matches_host(host)

    def inject(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        setter: textmap.Setter[textmap.CarrierT] = textmap.default_setter,
    ) -> None:
        try:
            ctx = _get_current() if context is None else context
            if not self.allows(ctx):
                self.withhold(carrier, setter)
                return
            encoded = _encoded(ctx) if self._excluded is None else self._encoded_without(ctx)
            if encoded is None:
                return
            key, existing = _read(carrier, BAGGAGE_HEADER)
            header = merge_header(existing, encoded)
            if header:
                setter.set(carrier, key, header)
            elif existing is not None:
                _delete(carrier, (key,))
            for name, value in encoded.headers:
                setter.set(carrier, name, value)
        except Exception:
            _logger.debug("posthog-otel could not inject PostHog context", exc_info=True)

    def _encoded_without(self, ctx: Context) -> Encoded | None:
        """Like :func:`_encoded`, without the ``exclude_tags`` (cached per scope state)."""
        excluded = self._excluded
        assert excluded is not None
        scope = current_scope(ctx)
        entries = otel_baggage.get_all(ctx)
        fallback = state_from_entries(entries) if entries else None
        if scope is None and fallback is None:
            return None
        if scope is not None and fallback is None:
            resolved = scope.resolve()
            cached: Encoded | None = resolved.extra.get(self._cache_key)
            if cached is None:
                tags = {k: v for k, v in resolved.tags.items() if not excluded(str(k))}
                cached = encode(resolved.ids, tags)
                resolved.extra[self._cache_key] = cached
            return cached
        assert fallback is not None
        if scope is None:
            ids: Mapping[str, str] = fallback.ids
            merged = fallback.tags
        else:
            resolved = scope.resolve()
            ids = _merged_ids(resolved.ids, fallback.ids)
            merged = {**fallback.tags, **resolved.tags}
        tags = {k: v for k, v in merged.items() if not excluded(str(k))}
        return encode(ids, tags)

    def withhold(self, carrier: Any, setter: textmap.Setter[Any] = textmap.default_setter) -> None:
        """Remove every ``posthog.*`` baggage member and ``X-POSTHOG-*`` header from ``carrier``."""
        count("outbound_withheld")
        key, existing = _read(carrier, BAGGAGE_HEADER)
        if existing:
            header = merge_header(existing, None)
            if header is None:
                _delete(carrier, (key,))
            elif header != existing:
                setter.set(carrier, key, header)
        _delete(carrier, _IDENTITY_HEADERS)

    # -- inbound ----------------------------------------------------------------------------

    def inbound_tags(self, tags: Mapping[str, Any]) -> dict[str, Any]:
        """The inbound ``tags`` a caller may set: without ``exclude_tags`` and without ``$``
        keys not named in ``allow_reserved_tags`` (those are counted and debug-logged)."""
        excluded = self._excluded
        allowed = self.settings.allow_reserved_tags
        accepted: dict[str, Any] = {}
        for key, value in tags.items():
            if key.startswith("$") and key not in allowed:
                count("inbound_reserved", 1, f"reserved tag {key!r} from a caller dropped")
                continue
            if excluded is not None and excluded(key):
                continue
            accepted[key] = value
        return accepted

    def extract(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        getter: textmap.Getter[textmap.CarrierT] = textmap.default_getter,
    ) -> Context:
        ctx = _get_current() if context is None else context
        try:
            return self._extract(carrier, ctx, getter)
        except Exception:
            count("inbound_malformed", 1, "extract failed")
            _logger.debug("posthog-otel could not extract PostHog context", exc_info=True)
            return ctx

    def _extract(self, carrier: Any, ctx: Context, getter: textmap.Getter[Any]) -> Context:
        ctx = _strip_entries(ctx)
        if self.trust_inbound == "none":
            return ctx
        inbound = self._read_inbound(carrier, getter)
        if not (inbound.ids or inbound.tags):
            return ctx  # unchanged; reading nothing again is cheap (no baggage to parse)
        ctx = remember(ctx, inbound)
        scope = Scope(fresh=True)
        scope.ids = dict(inbound.ids)
        scope.tags = dict(inbound.tags)
        return context_with_scope(scope, ctx)

    def inbound_state(
        self, carrier: Any, getter: textmap.Getter[Any] = textmap.default_getter
    ) -> tuple[Mapping[str, str], Mapping[str, Any]]:
        """The identity values and tags ``carrier`` brings in (read-only mappings).

        Reuses the extraction recorded in the current Context when it read the same header
        values with this propagator (:mod:`posthog_otel.propagation.inbound`). Never raises.
        """
        try:
            if self.trust_inbound == "none":
                return {}, {}
            seen = self._seen(carrier, getter)
            found = recall(self, seen)
            if found is None:
                found = self._inbound_from(seen)
            return found.ids, found.tags
        except Exception:
            count("inbound_malformed", 1, "extract failed")
            _logger.debug("posthog-otel could not extract PostHog context", exc_info=True)
            return {}, {}

    def _seen(self, carrier: Any, getter: textmap.Getter[Any]) -> tuple[Any, ...]:
        """What ``getter`` returns for every header extraction reads (baggage when trusted)."""
        trusted = self.trust_inbound == "all"
        if getattr(getter, "lower_case_mapping", False):
            # the same values the getter would return ((value,) or None), without calling it
            mapping_get = carrier.get
            seen = [_one(mapping_get(lower)) for _, _, lower in _HEADER_FIELDS]
            if trusted:
                seen.append(_one(mapping_get(BAGGAGE_HEADER)))
            return tuple(seen)
        get = getter.get
        retry = not _ignores_case(getter)
        seen = []
        for _, header, lower in _HEADER_FIELDS:
            values = get(carrier, header)
            if values is None and retry:
                values = get(carrier, lower)
            seen.append(seen_values(values))
        if trusted:
            seen.append(seen_values(get(carrier, BAGGAGE_HEADER)))
        return tuple(seen)

    def _read_inbound(self, carrier: Any, getter: textmap.Getter[Any]) -> Extracted:
        return self._inbound_from(self._seen(carrier, getter))

    def _inbound_from(self, seen: tuple[Any, ...]) -> Extracted:
        ids: dict[str, str] = {}
        for (name, _, _), values in zip(_HEADER_FIELDS, seen, strict=False):
            if values is None:
                continue
            value = _first_value(values)
            if value:
                ids[name] = value
        tags: dict[str, Any] = {}
        if self.trust_inbound == "all":
            values = seen[len(_HEADER_FIELDS)]
            if values:
                inbound = parse_header(values)
                for name, value in inbound.ids.items():  # the headers win for identity
                    ids.setdefault(name, value)
                tags = self.inbound_tags(inbound.tags)
        return Extracted(self, seen, ids, dict(tags))

    @property
    def fields(self) -> set[str]:
        """The headers inject may set: ``baggage`` and one ``X-POSTHOG-*`` header per field."""
        return set(_FIELDS)


def _encoded(ctx: Context) -> Encoded | None:
    """The encoding of the PostHog state in ``ctx``: its scope, with ``posthog.*`` baggage
    entries filling what the scope does not set. None when there is no state at all."""
    scope = current_scope(ctx)
    entries = otel_baggage.get_all(ctx)
    fallback = state_from_entries(entries) if entries else None
    if scope is None:
        if fallback is None:
            return None
        return encode(fallback.ids, fallback.tags)
    resolved = scope.resolve()
    if fallback is None:
        return encoded_for(resolved)
    return encode(_merged_ids(resolved.ids, fallback.ids), {**fallback.tags, **resolved.tags})


def _merged_ids(first: Mapping[str, str], fallback: Mapping[str, str]) -> dict[str, str]:
    """Identity values of ``first``, with ``fallback`` filling the fields it leaves empty."""
    merged = {name: value for name, value in fallback.items() if value}
    merged.update((name, value) for name, value in first.items() if value)
    return merged


def _settings(
    trust_inbound: str | None,
    propagation_targets: Any,
    exclude_tags: Any = None,
    allow_reserved_tags: Any = None,
) -> PropagationSettings:
    """Settings from arguments (errors raise) and the environment (errors logged, strict)."""
    try:
        return PropagationSettings.build(
            trust_inbound,
            propagation_targets,
            exclude_tags,
            allow_reserved_tags=allow_reserved_tags,
        )
    except ValueError as exc:
        if not str(exc).startswith("POSTHOG_OTEL_"):
            raise
        _logger.error("posthog-otel: %s; using the strict setting instead", exc)
    if trust_inbound is None:
        try:
            PropagationSettings.build(None, "internal", (), allow_reserved_tags=())
        except ValueError:
            trust_inbound = "none"
    if propagation_targets is None:
        try:
            PropagationSettings.build("all", None, (), allow_reserved_tags=())
        except ValueError:
            propagation_targets = "internal"
    if allow_reserved_tags is None:
        try:
            PropagationSettings.build("all", "internal", ())
        except ValueError:
            allow_reserved_tags = ()
    return _settings(trust_inbound, propagation_targets, exclude_tags, allow_reserved_tags)


_default: PosthogPropagator | None = None


def default_propagator() -> PosthogPropagator:
    """A propagator configured from the environment, built once."""
    global _default
    if _default is None:
        _default = PosthogPropagator()
    return _default


def parts_of(propagator: Any) -> tuple[Any, ...]:
    """The propagators inside a ``CompositePropagator`` (empty for any other propagator).

    OpenTelemetry keeps them in a private attribute; this is the one place that reads it.
    """
    return tuple(getattr(propagator, "_propagators", None) or ())


def find_posthog_propagator(propagator: Any, _depth: int = 0) -> PosthogPropagator | None:
    """The ``PosthogPropagator`` in ``propagator`` (itself or in nested composites), if any."""
    if isinstance(propagator, PosthogPropagator):
        return propagator
    if _depth < 8:
        for inner in parts_of(propagator):
            found = find_posthog_propagator(inner, _depth + 1)
            if found is not None:
                return found
    return None
