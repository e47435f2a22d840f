"""Unit tests of posthog_otel.bridge."""
