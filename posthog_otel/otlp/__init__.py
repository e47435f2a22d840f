"""The one OTLP reader (protobuf and JSON) and the OTLP/HTTP answers, for the bridge and the sink.

Modules, each with one job:

- :mod:`._wire` reads the protobuf wire format (varints, fields, ``AnyValue``, ``KeyValue``);
  :mod:`._wire_traces` and :mod:`._wire_logs` read the two export requests with it.
  :func:`._wire_traces.export_items` walks either request (resource -> scope -> item).
- :mod:`.json_format` reads OTLP JSON documents and attribute values; :mod:`.json_items` walks
  an OTLP JSON request and reads each span or log record's fields.
- :mod:`.rules` is the one place that decides what a valid id, time, enum or field type is and
  why an item is rejected; the bridge and the sink both apply it, for protobuf and JSON.
- :mod:`.model` holds the bridge's decoded span and log objects; :mod:`.decode` builds them
  lazily (only what a wanted span needs); :mod:`.items` reads every field for the sink.
  Both use the same walks, item readers and rules, so they reject the same items.
- :mod:`.keys` spells every attribute key the layer looks for; :mod:`.responses` writes the
  OTLP/HTTP answers.

What this package may import: the standard library, ``opentelemetry`` (the API, for
``SpanKind`` and ``StatusCode``) and, from the rest of ``posthog_otel``, only
``posthog_otel._identity`` (the identity vocabulary). Never ``spans/`` or anything else: the
bridge and the sink import this, not the reverse (``tests/unit/test_layering.py`` checks it).

Usage::

    from posthog_otel.otlp.decode import decode_traces      # the bridge
    from posthog_otel.otlp.items import read_traces         # the sink
"""
