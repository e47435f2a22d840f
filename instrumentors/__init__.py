"""Framework and library instrumentors for posthog-otel.

Each module is an OpenTelemetry ``BaseInstrumentor`` for one framework or library and imports
that library lazily, so importing this package costs nothing. ``PosthogInstrumentor`` enables
every one whose library is importable.

Installed as ``posthog_otel.instrumentors`` (the repository keeps it in a top-level folder).
May import every core layer of ``posthog_otel`` (context, errors, delivery, client,
propagation, spans); siblings are imported relatively. Only the package root, the demo and
``PosthogInstrumentor`` (through entry points) use it.
"""
