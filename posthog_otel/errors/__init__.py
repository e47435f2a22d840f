"""Exceptions to PostHog's ``$exception_list``: live objects and stack-trace text.

Imports only the standard library and :mod:`posthog_otel.context`-free helpers; used by the
client (live exceptions), the span mapping and the bridge (stack-trace text).
"""
