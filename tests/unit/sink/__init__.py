"""Unit tests of posthog_otel.sink."""
