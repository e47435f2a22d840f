"""Framework and library instrumentors for posthog-otel.

Each module is an OpenTelemetry ``BaseInstrumentor`` for one framework or library and imports
that library lazily, so importing this package costs nothing. ``PosthogInstrumentor`` enables
every one whose library is importable.
"""
