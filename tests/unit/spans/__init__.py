"""Unit tests of posthog_otel.spans."""
