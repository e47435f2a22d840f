"""The one OTLP reader (protobuf and JSON) and OTLP/HTTP answers, for the bridge and the sink.

Imports nothing from the layers above it except the identity vocabulary.
"""
