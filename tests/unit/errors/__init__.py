"""Unit tests of posthog_otel.errors."""
