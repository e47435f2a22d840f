"""The one OTLP reader (protobuf and JSON) and the OTLP/HTTP answers, for the bridge and the sink.

Modules, each with one job:

- :mod:`._wire` reads the protobuf wire format (varints, fields, ``AnyValue``, ``KeyValue``);
  :mod:`._wire_traces` and :mod:`._wire_logs` read the two export requests with it.
- :mod:`.json_format` reads OTLP JSON fields (hex ids, int or named enums, 64-bit ints as text).
- :mod:`.model` holds the bridge's decoded span and log objects; :mod:`.decode` builds them
  lazily (only what a wanted span needs); :mod:`.items` reads every field for the sink.
- :mod:`.keys` spells every attribute key the layer looks for; :mod:`.responses` writes the
  OTLP/HTTP answers.

Layering: imports only the standard library, ``opentelemetry-api`` and lower layers of this
package; never ``spans/`` or above (the bridge and the sink import this, not the reverse).

Usage::

    from posthog_otel.otlp.decode import decode_traces      # the bridge
    from posthog_otel.otlp.items import read_traces         # the sink
"""
