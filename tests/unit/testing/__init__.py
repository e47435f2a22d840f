"""Unit tests of posthog_otel.testing."""
