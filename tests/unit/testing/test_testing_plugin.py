"""The test helpers users get: ``posthog_events`` and ``posthog_sink`` fixtures (pytest11)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import posthog_otel as posthog
from posthog_otel import global_client
from posthog_otel.sink import SinkServer
from posthog_otel.testing import CapturedEvents


def test_posthog_events_is_the_default_client(posthog_events: CapturedEvents) -> None:
    assert posthog_events.client is not None
    assert global_client.current_client() is posthog_events.client
    with posthog.new_context():
        posthog.identify_context("u-1")
        posthog.tag("plan", "pro")
        posthog.capture("signed_up")
        try:
            raise RuntimeError("boom")
        except RuntimeError as exc:
            posthog.capture_exception(exc)
    posthog.capture("other", distinct_id="u-2")
    assert len(posthog_events.wait_for(3, timeout=1)) == 3
    (signup,) = posthog_events.named("signed_up")
    assert signup["properties"]["plan"] == "pro"
    assert [e["event"] for e in posthog_events.for_person("u-1")] == ["signed_up", "$exception"]
    assert posthog_events.named("$exception")[0]["properties"]["$exception_list"][0]["type"] == (
        "RuntimeError"
    )


def test_posthog_sink_is_a_real_server(posthog_sink: SinkServer) -> None:
    client = posthog_sink.client()
    client.capture("delivered", distinct_id="u-1", properties={"n": 1})
    assert client.flush(5)
    (row,) = posthog_sink.wait_for(1, event="delivered")
    assert row["distinct_id"] == "u-1"
    assert row["properties"]["n"] == 1
    assert posthog_sink.url.startswith("http://127.0.0.1:")
    client.shutdown(1)


def test_the_plugin_loads_in_another_project(tmp_path: Path) -> None:
    """A project that only installed posthog-otel gets the fixtures (entry point), and the
    previous default client comes back after each test."""
    (tmp_path / "test_user_project.py").write_text(
        textwrap.dedent(
            """
            import posthog_otel
            from posthog_otel import global_client
            from posthog_otel.testing import memory_client

            PREVIOUS, _ = memory_client()
            global_client.set_client(PREVIOUS)

            def test_capture(posthog_events):
                posthog_otel.capture("hello", distinct_id="u1")
                assert posthog_events.named("hello")[0]["distinct_id"] == "u1"
                assert posthog_events.client is global_client.current_client()
                assert posthog_events.client is not PREVIOUS

            def test_previous_client_is_restored():
                assert global_client.current_client() is PREVIOUS

            def test_sink(posthog_sink):
                client = posthog_sink.client()
                client.capture("via_sink", distinct_id="u2")
                assert client.flush(5)
                assert posthog_sink.events("via_sink")[0]["distinct_id"] == "u2"
                client.shutdown(1)
            """
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_importing_the_helpers_never_needs_pytest() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pytest"] = None  # as if pytest were not installed
        import posthog_otel.testing as testing
        client, events = testing.memory_client()
        client.capture("x", distinct_id="u")
        assert events.named("x") and events.client is client
        del sys.modules["pytest"]
        assert "pytest" not in sys.modules
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
