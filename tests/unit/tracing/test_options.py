"""The ``traces`` option: posthog-python's keys, its fallbacks, and a hook we cannot run."""

from __future__ import annotations

import logging

import pytest

from posthog_otel.tracing.options import TracesOptions, resolve_traces


def test_off_values_and_true() -> None:
    assert resolve_traces(None) is None
    assert resolve_traces(False) is None
    assert resolve_traces(True) == TracesOptions()
    assert resolve_traces({}) == TracesOptions()


def test_posthog_python_keys_are_read() -> None:
    options = resolve_traces(
        {
            "service_name": "checkout",
            "service_version": "1.2.3",
            "environment": "prod",
            "resource_attributes": {"team": "payments", "service.name": "override"},
            "flush_interval": 1,
            "max_queue_size": 100,
            "max_export_batch_size": 10,
            "max_attributes_per_span": 5,
            "max_events_per_span": 6,
            "max_attribute_value_length": 7,
            "max_live_spans": 8,
            "max_span_age": 9,
        }
    )
    assert options is not None
    assert options.flush_interval == 1.0
    assert (options.max_queue_size, options.max_export_batch_size) == (100, 10)
    assert (options.max_attributes_per_span, options.max_events_per_span) == (5, 6)
    assert options.max_attribute_value_length == 7
    # resource_attributes win over the named fields, as in posthog-python
    assert options.resource() == {
        "service.name": "override",
        "service.version": "1.2.3",
        "deployment.environment": "prod",
        "team": "payments",
    }


def test_unusable_values_fall_back_to_defaults_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "posthog.otel"):
        options = resolve_traces(
            {
                "flush_interval": -1,
                "max_queue_size": "big",
                "max_export_batch_size": True,
                "service_name": 3,
                "resource_attributes": {"service.version": 2},
                "nonsense": 1,
            }
        )
    assert options is not None
    assert options.flush_interval == 5.0
    assert options.max_queue_size == 2048
    assert options.max_export_batch_size == 512
    assert options.service_name is None
    assert "service.version" not in options.resource()
    text = caplog.text
    for name in ("flush_interval", "max_queue_size", "service_name", "nonsense", "service.version"):
        assert name in text


def test_queue_holds_at_least_one_batch() -> None:
    options = resolve_traces({"max_queue_size": 10, "max_export_batch_size": 50})
    assert options is not None and options.max_queue_size == 50


def test_a_before_span_send_hook_keeps_tracing_off() -> None:
    with pytest.raises(ValueError, match="before_span_send"):
        resolve_traces({"before_span_send": lambda span: span})
    # no hook at all is fine
    assert resolve_traces({"before_span_send": None}) == TracesOptions()
