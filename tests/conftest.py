from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from posthog_otel import global_client
from posthog_otel.testing import CapturedEvents
from posthog_otel.testing.capture_server import CaptureServer

from .support import routing

routing.install()

TESTS = Path(__file__).resolve().parent
SLOW_DIRECTORIES = ("integration", "reliability")
# Unit tests that take about a second or more on their own (pytest --durations), or run a
# subprocess: out of the fast tier.
SLOW_UNIT_TESTS = {
    "parity/test_uncaught_parity.py::test_uncaught_exception_is_reported_as_posthog_python_reports_it",
    "unit/otlp/test_bridge_decode.py::test_wire_reader_agrees_with_the_generated_classes",
    "unit/otlp/test_reader.py::test_bridge_reads_protobuf_and_json_alike",
    "unit/otlp/test_reader.py::test_bridge_reads_protobuf_and_json_logs_alike",
    "unit/otlp/test_reader.py::test_every_log_field_matches_the_generated_classes",
    "unit/otlp/test_reader.py::test_every_span_field_matches_the_generated_classes",
    "unit/otlp/test_reader.py::test_the_sink_reads_protobuf_without_the_generated_classes",
    "unit/delivery/test_transport.py::test_429_honours_retry_after",
    "unit/delivery/test_transport.py::test_flush_keeps_its_time_budget",
    "unit/tracing/test_export.py::test_429_waits_for_retry_after_then_delivers_once",
    "unit/delivery/test_http_loading.py::test_building_a_client_and_capturing_does_not_import_requests",
    "unit/spans/test_processor_exit.py::test_span_ended_just_before_a_multiprocessing_child_exits_is_delivered",
    "unit/delivery/test_http_loading.py::test_instrumenting_with_traces_and_logs_does_not_import_requests",
    "unit/delivery/test_http_loading.py::test_a_fork_during_the_first_import_leaves_the_child_a_whole_requests",
    "unit/propagation/test_baggage.py::test_any_json_tags_round_trip",
    "unit/propagation/test_baggage.py::test_valid_members_are_kept_among_garbage",
    "unit/sink/test_sink_fuzz.py::test_any_capture_body_is_answered_and_rendered",
    "unit/sink/test_sink_fuzz.py::test_any_otlp_json_body_is_answered_and_rendered",
    "unit/spans/test_exporter.py::test_no_events_lost_at_exit_whatever_the_atexit_order",
    "unit/test_flags_options.py::test_without_posthog_python_flag_calls_name_the_extra",
    "unit/testing/test_testing_plugin.py::test_importing_the_helpers_never_needs_pytest",
    "unit/testing/test_testing_plugin.py::test_the_plugin_loads_in_another_project",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``slow`` everything under integration/ and reliability/, and the slow unit tests."""
    modules: dict[str, object] = {}
    for item in items:
        path = item.path.resolve()
        if not path.is_relative_to(TESTS):
            continue
        relative = path.relative_to(TESTS).as_posix()
        modules[relative] = getattr(item, "module", None)
        test_id = f"{relative}::{item.name.split('[')[0]}"
        if relative.split("/")[0] in SLOW_DIRECTORIES or test_id in SLOW_UNIT_TESTS:
            item.add_marker(pytest.mark.slow)
    # A renamed or moved test must not silently drop out of the list (and into the fast tier).
    for test_id in SLOW_UNIT_TESTS:
        file, name = test_id.split("::")
        if file in modules and not hasattr(modules[file], name):
            raise pytest.UsageError(f"SLOW_UNIT_TESTS names a test that does not exist: {test_id}")


@pytest.fixture
def capture_server() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _isolated_default_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without a default client and without PostHog env configuration."""
    for name in ("POSTHOG_API_KEY", "POSTHOG_PROJECT_API_KEY", "POSTHOG_HOST", "POSTHOG_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    previous = global_client.set_client(None)
    routing.route_to(None)
    yield
    client = global_client.set_client(previous)
    if client is not None and client is not previous:
        client.shutdown(0.5)


@pytest.fixture
def events(posthog_events: CapturedEvents) -> CapturedEvents:
    """The shipped ``posthog_events`` fixture (posthog_otel.testing's pytest plugin), under the
    short name the tests use: an in-memory client installed as the default for the test."""
    return posthog_events
