"""Unit tests of posthog_otel.propagation."""
