"""Validated options of ``PosthogPropagator`` and the outbound instrumentors.

settings = PropagationSettings.build(trust_inbound="headers", exclude_tags="email")
PosthogPropagator(settings=settings)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import name_patterns
from .targets import validate_pattern

__all__ = ["TRUST_INBOUND_CHOICES", "PropagationSettings"]

TRUST_INBOUND_CHOICES = ("all", "headers", "none")


@dataclass(frozen=True)
class PropagationSettings:
    """Validated options of ``PosthogPropagator`` and the outbound instrumentors.

    ``trust_inbound``: ``"all"`` (identity headers and ``posthog.*`` baggage, the default),
    ``"headers"`` (``X-POSTHOG-*`` identity headers only) or ``"none"``; env
    ``POSTHOG_OTEL_TRUST_INBOUND``.

    ``propagation_targets``: patterns of destinations that receive PostHog identity and tags
    (see :mod:`posthog_otel.propagation.targets`). A given list **replaces** the default ``("internal",)``;
    include the keyword ``internal`` to extend it. Env ``POSTHOG_OTEL_PROPAGATION_TARGETS``,
    comma-separated (``internal,*.mycorp.com,10.20.0.0/16,re:^api-\\d+\\.example\\.org$``);
    unset or blank means the default.

    ``exclude_tags``: tag keys (names or fnmatch patterns, any case) that are never
    propagated: not injected, and ignored when extracted. Env ``POSTHOG_OTEL_EXCLUDE_TAGS``,
    comma-separated (``email,*_token``).

    ``allow_reserved_tags``: inbound tag keys starting with ``$`` (PostHog's own properties:
    ``$set``, ``$groups``, ``$session_id``...) that are accepted from a caller, by exact name;
    every other ``$`` key is dropped on extract (counted as ``inbound_reserved``). Default
    none. Env ``POSTHOG_OTEL_ALLOW_RESERVED_TAGS``, comma-separated (``$lib_version``).

        settings = PropagationSettings.build(propagation_targets=["internal", "*.mycorp.com"])
    """

    trust_inbound: str = "all"
    propagation_targets: tuple[Any, ...] = ("internal",)
    exclude_tags: tuple[str, ...] = ()
    allow_reserved_tags: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls,
        trust_inbound: str | None = None,
        propagation_targets: Any = None,
        exclude_tags: Any = None,
        *,
        allow_reserved_tags: Any = None,
        environ: Mapping[str, str] | None = None,
    ) -> PropagationSettings:
        """Validate (``ValueError`` naming the option or variable) and fill from the env."""
        env = os.environ if environ is None else environ
        source = "trust_inbound"
        if trust_inbound is None:
            raw = env.get("POSTHOG_OTEL_TRUST_INBOUND", "")
            source = "POSTHOG_OTEL_TRUST_INBOUND"
            trust_inbound = raw.strip() or "all"
        if not isinstance(trust_inbound, str) or (
            trust_inbound.strip().lower() not in TRUST_INBOUND_CHOICES
        ):
            raise ValueError(f"{source} must be one of all, headers, none; got {trust_inbound!r}")
        trust = trust_inbound.strip().lower()

        source = "propagation_targets"
        patterns: tuple[Any, ...]
        if propagation_targets is None:
            source = "POSTHOG_OTEL_PROPAGATION_TARGETS"
            raw = env.get(source, "")
            propagation_targets = raw if raw.strip() else "internal"
        if isinstance(propagation_targets, str):
            patterns = tuple(p.strip() for p in propagation_targets.split(",") if p.strip())
        elif isinstance(propagation_targets, re.Pattern):
            patterns = (propagation_targets,)
        elif isinstance(propagation_targets, Sequence | set | frozenset):
            patterns = tuple(propagation_targets)
        else:
            raise ValueError(f"{source} must be a list of patterns, got {propagation_targets!r}")
        for pattern in patterns:
            try:
                validate_pattern(pattern)
            except ValueError as exc:
                raise ValueError(f"{source}: {exc}") from None

        if exclude_tags is None:
            excluded = name_patterns(env.get("POSTHOG_OTEL_EXCLUDE_TAGS", ""), "exclude_tags")
        else:
            excluded = name_patterns(exclude_tags, "exclude_tags")
        source = "allow_reserved_tags"
        if allow_reserved_tags is None:
            source = "POSTHOG_OTEL_ALLOW_RESERVED_TAGS"
            allow_reserved_tags = env.get(source, "")
        allowed = name_patterns(allow_reserved_tags, source)
        for name in allowed:
            if not name.startswith("$"):
                raise ValueError(f"{source} names tag keys starting with $, got {name!r}")
        return cls(
            trust_inbound=trust,
            propagation_targets=patterns,
            exclude_tags=excluded,
            allow_reserved_tags=frozenset(allowed),
        )
