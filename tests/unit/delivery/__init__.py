"""Unit tests of posthog_otel.delivery."""
