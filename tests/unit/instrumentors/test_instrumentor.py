"""PosthogInstrumentor in-process: wiring, idempotence, uninstrument, never raising."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import logging
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

import posthog_otel as posthog
from posthog_otel import PosthogInstrumentor, global_client
from posthog_otel.propagation.propagator import PosthogPropagator
from posthog_otel.spans import record_exception as span_exceptions
from posthog_otel.testing.capture_server import CaptureServer


def _has_posthog_propagator(propagator: object) -> bool:
    if isinstance(propagator, PosthogPropagator):
        return True
    return any(_has_posthog_propagator(p) for p in getattr(propagator, "_propagators", ()))


def test_instrument_wires_processor_propagator_and_hook(
    instrumentor: PosthogInstrumentor, capture_server: CaptureServer
) -> None:
    provider = TracerProvider()
    before = propagate.get_global_textmap()
    instrumentor.instrument(
        api_key="phc_inst",
        host=capture_server.url,
        tracer_provider=provider,
        instrument_libraries=False,
    )
    assert span_exceptions.is_hooked()
    composite = propagate.get_global_textmap()
    assert _has_posthog_propagator(composite)
    assert before in getattr(composite, "_propagators", ())  # the configured ones are kept
    tracer = provider.get_tracer("t")
    with posthog.new_context():
        posthog.identify_context("inst-user")
        with (
            pytest.raises(ValueError),
            tracer.start_as_current_span("GET /x", kind=SpanKind.SERVER),
        ):
            raise ValueError("in view")
    provider.force_flush()
    assert posthog.flush(5)
    names = sorted(e["event"] for e in capture_server.events)
    assert names == ["$exception", "GET /x"]
    assert all(e["distinct_id"] == "inst-user" for e in capture_server.events)
    provider.shutdown()


def test_instrument_is_idempotent_and_uninstrument_undoes_it(
    instrumentor: PosthogInstrumentor,
) -> None:
    provider = TracerProvider()
    original = propagate.get_global_textmap()
    instrumentor.instrument(tracer_provider=provider, instrument_libraries=False)
    composite = propagate.get_global_textmap()
    instrumentor.instrument(tracer_provider=provider, instrument_libraries=False)  # warns, no-op
    assert propagate.get_global_textmap() is composite
    processor = instrumentor._processor
    assert processor is not None and processor.enabled
    instrumentor.uninstrument()
    assert propagate.get_global_textmap() is original
    assert not span_exceptions.is_hooked()
    assert not processor.enabled
    with posthog.new_context():
        posthog.identify_context("after")
        with provider.get_tracer("t").start_as_current_span("after") as span:
            pass
    assert "posthog.distinct_id" not in (span.attributes or {})  # type: ignore[attr-defined]


def test_instrument_never_raises(
    instrumentor: PosthogInstrumentor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="posthog.otel")
    instrumentor.instrument(no_such_option=True)
    assert "could not instrument" in caplog.text
    instrumentor.uninstrument()
    instrumentor.instrument(flush_at=0)  # invalid client option: logged, not raised
    assert "flush_at" in caplog.text


def test_disabled_by_environment(
    instrumentor: PosthogInstrumentor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTHOG_OTEL_DISABLED", "true")
    provider = TracerProvider()
    instrumentor.instrument(tracer_provider=provider)
    assert instrumentor._processor is None
    assert not span_exceptions.is_hooked()


def test_default_client_is_configured_from_arguments(
    instrumentor: PosthogInstrumentor, capture_server: CaptureServer
) -> None:
    instrumentor.instrument(
        api_key="phc_args",
        host=capture_server.url,
        tracer_provider=TracerProvider(),
        instrument_libraries=False,
    )
    assert global_client.get_client().host == capture_server.url


def _identified_request(provider: TracerProvider, user: str) -> None:
    tracer = provider.get_tracer("t")
    with (
        pytest.raises(ValueError),
        tracer.start_as_current_span("GET /order", kind=SpanKind.SERVER),
        posthog.new_context(capture_exceptions=False),  # the span reports it
    ):
        posthog.identify_context(user)
        posthog.capture("manual")
        raise ValueError("declined")


@pytest.mark.parametrize("order", ["setup_first", "instrument_first"])
def test_setup_and_instrument_work_in_either_order(
    instrumentor: PosthogInstrumentor, capture_server: CaptureServer, order: str
) -> None:
    provider = TracerProvider()
    if order == "setup_first":
        posthog.setup(api_key="phc_order", host=capture_server.url)
        instrumentor.instrument(tracer_provider=provider, instrument_libraries=False)
    else:
        instrumentor.instrument(tracer_provider=provider, instrument_libraries=False)
        posthog.setup(api_key="phc_order", host=capture_server.url)
    _identified_request(provider, f"user-{order}")
    provider.force_flush()
    assert posthog.flush(5)
    events = sorted((e["event"], e["distinct_id"]) for e in capture_server.events)
    assert events == [
        ("$exception", f"user-{order}"),
        ("GET /order", f"user-{order}"),
        ("manual", f"user-{order}"),
    ]
    provider.shutdown()


def test_instrument_arguments_after_setup_replace_it_and_say_so(
    instrumentor: PosthogInstrumentor,
    capture_server: CaptureServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="posthog.otel")
    posthog.setup(api_key="phc_first", host="http://127.0.0.1:9")
    instrumentor.instrument(
        api_key="phc_second",
        host=capture_server.url,
        tracer_provider=TracerProvider(),
        instrument_libraries=False,
    )
    assert "replaces the default client" in caplog.text
    assert global_client.get_client().host == capture_server.url


def _probe_instrumentor(requirement: str, module: str, patched: list[str]) -> Any:
    """A library instrumentor for ``requirement`` that patches ``module`` when it is imported."""
    from posthog_otel.instrumentors._base import ImportHooks, PosthogLibraryInstrumentor

    hooks = ImportHooks("probe")

    class _Probe(PosthogLibraryInstrumentor):
        _instance = None  # BaseInstrumentor keeps one instance per class

        def instrumentation_dependencies(self) -> tuple[str, ...]:
            return (requirement,)

        def _instrument(self, **kwargs: object) -> None:
            hooks.start(self.library_supported)
            hooks.when_imported(module, lambda loaded: patched.append(loaded.__name__))
            hooks.when_imported(module, lambda loaded: patched.append("second hook"))

        def _uninstrument(self, **kwargs: object) -> None:
            hooks.stop()

    return _Probe()


@pytest.fixture
def metadata_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The distribution names whose metadata is read (the real lookup still runs)."""
    reads: list[str] = []
    real = importlib.metadata.Distribution.from_name

    def recording(name: str) -> importlib.metadata.Distribution:
        reads.append(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata.Distribution, "from_name", staticmethod(recording))
    return reads


@pytest.fixture
def probe_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"posthog_otel_probe_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("requirement", "level", "message"),
    [
        # a distribution that is not installed: one debug line
        (
            "no-such-library-for-posthog-otel >= 1",
            logging.DEBUG,
            "_Probe skipped, no-such-library-for-posthog-otel >= 1 is not installed",
        ),
        # an installed version outside the supported range: one warning line
        (
            "packaging < 1",
            logging.WARNING,
            '_Probe skipped: This instrumentation only instruments "packaging < 1", but '
            'currently installed version ("packaging ',
        ),
    ],
)
def test_the_library_version_is_checked_when_the_app_imports_it(
    caplog: pytest.LogCaptureFixture,
    metadata_reads: list[str],
    probe_module: str,
    requirement: str,
    level: int,
    message: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="posthog.otel")
    patched: list[str] = []
    instrumentor = _probe_instrumentor(requirement, probe_module, patched)
    instrumentor.instrument(skip_dep_check=True)  # how opentelemetry-instrument calls it
    try:
        # nothing read and nothing logged while the app has not imported the library
        assert metadata_reads == []
        assert [r for r in caplog.records if r.name.startswith("posthog")] == []

        importlib.import_module(probe_module)
        assert patched == []  # refused: neither hook patched anything
        assert metadata_reads == [requirement.split()[0]]  # read once for both hooks
        ours = [r for r in caplog.records if r.name.startswith("posthog")]
        assert [r.levelno for r in ours] == [level]
        assert message in ours[0].getMessage()
        assert ours[0].exc_info is None
    finally:
        instrumentor.uninstrument()


def test_a_supported_library_is_patched_on_import_after_one_version_read(
    caplog: pytest.LogCaptureFixture, metadata_reads: list[str], probe_module: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="posthog.otel")
    patched: list[str] = []
    instrumentor = _probe_instrumentor("packaging >= 1", probe_module, patched)
    instrumentor.instrument(skip_dep_check=True)
    try:
        assert metadata_reads == []
        importlib.import_module(probe_module)
        assert patched == [probe_module, "second hook"]
        assert metadata_reads == ["packaging"]
        assert [r for r in caplog.records if r.name.startswith("posthog")] == []
    finally:
        instrumentor.uninstrument()
    # a new instrument() reads the version again (the hooks of the first one are inert)
    instrumentor.instrument(skip_dep_check=True)
    try:
        assert patched == [probe_module, "second hook"] * 2
        assert metadata_reads == ["packaging", "packaging"]
    finally:
        instrumentor.uninstrument()


def test_a_direct_instrument_call_checks_at_once(
    caplog: pytest.LogCaptureFixture, metadata_reads: list[str], probe_module: str
) -> None:
    patched: list[str] = []
    instrumentor = _probe_instrumentor("packaging < 1", probe_module, patched)
    instrumentor.instrument()
    assert not instrumentor.is_instrumented_by_opentelemetry
    assert metadata_reads == ["packaging"]
    assert "only instruments" in caplog.text
    importlib.import_module(probe_module)
    assert patched == []


@pytest.mark.slow  # a subprocess
def test_posthog_instrumentor_reads_only_its_own_metadata_for_unused_libraries() -> None:
    # a fresh interpreter: Flask imported, none of the other instrumented libraries
    script = textwrap.dedent(
        """
        import importlib.metadata as md, json
        import flask
        reads = []
        real = md.Distribution.from_name
        md.Distribution.from_name = staticmethod(lambda name: reads.append(name) or real(name))
        from posthog_otel.instrumentor import PosthogInstrumentor
        PosthogInstrumentor().instrument(api_key="phc_test", host="http://127.0.0.1:9")
        print(json.dumps(reads))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["posthog-otel", "flask"]
