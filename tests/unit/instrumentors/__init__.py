"""Unit tests of posthog_otel.instrumentors."""
