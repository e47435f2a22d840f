"""The installed version of posthog-otel."""

__version__ = "0.1.0"
