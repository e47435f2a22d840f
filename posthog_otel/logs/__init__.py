"""Python ``logging`` records to PostHog's OTLP logs endpoint (``{host}/i/v1/logs``).

Each record carries the PostHog identity of the context it was logged in (``posthogDistinctId``,
``sessionId``, ``posthog.*`` and ``posthog.tag.*``) and the active span's trace and span ids, so
a person's or a session's logs are one filter away in PostHog and sit next to the request's
spans and events. :mod:`.processor` is the OpenTelemetry log processor (filtering, identity,
the bounded queue); :mod:`.install` puts it behind the root logger once.

May import the foundation, the context layer, delivery, the client's settings and the span
attribute mapping; the instrumentor (``PosthogInstrumentor().instrument(logs=True)``, env
``POSTHOG_OTEL_LOGS=true``) is what turns it on.

Usage::

    from posthog_otel.logs.install import install

    installed = install(posthog_otel.get_client(), level="INFO")
"""
