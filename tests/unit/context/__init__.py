"""Unit tests of posthog_otel.context."""
