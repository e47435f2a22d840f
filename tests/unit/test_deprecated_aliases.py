"""The three deprecated module aliases kept for one release: each warns on its first import,
naming the new path, and still offers every name the 0.1 module exported (``__all__`` at
commit babbad7, the last release layout). ``python -m posthog_otel.capture_server`` still
serves, like the new ``python -m posthog_otel.testing.capture_server``."""

from __future__ import annotations

import importlib
import json
import os
import selectors
import signal
import subprocess
import sys
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from tests.support.procs import ROOT

# name -> (new home, __all__ of the old module at babbad7)
ALIASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "posthog_otel.contexts": (
        "posthog_otel.context",
        (
            "Scope",
            "current_scope",
            "get_context_distinct_id",
            "get_context_session_id",
            "get_context_window_id",
            "get_tags",
            "identify_context",
            "new_context",
            "scoped",
            "set_context_session",
            "set_context_window_id",
            "tag",
        ),
    ),
    "posthog_otel.baggage": (
        "posthog_otel.propagation.baggage",
        (
            "DISTINCT_ID_KEY",
            "MAX_HEADER_BYTES",
            "MAX_INBOUND_TAGS",
            "MAX_MEMBERS",
            "MAX_MEMBER_BYTES",
            "MAX_VALUE_CHARS",
            "PREFIX",
            "SESSION_ID_KEY",
            "TAG_PREFIX",
            "WINDOW_ID_KEY",
            "Encoded",
            "Inbound",
            "decode_tag_key",
            "decode_tag_value",
            "encode",
            "encode_tag_key",
            "encode_tag_value",
            "encoded_for",
            "merge_header",
            "parse_header",
            "reset_stats",
            "sanitize_header_value",
            "split_members",
            "state_from_entries",
            "stats",
        ),
    ),
    "posthog_otel.capture_server": (
        "posthog_otel.testing.capture_server",
        # ``main`` was not in __all__ but was the module's entry point
        ("CaptureServer", "Fault", "Received", "main"),
    ),
}
# Defined by the old module itself, derived now from the identity vocabulary.
DERIVED = {
    "DISTINCT_ID_KEY": "posthog.distinct_id",
    "SESSION_ID_KEY": "posthog.session_id",
    "WINDOW_ID_KEY": "posthog.window_id",
}


@contextmanager
def _fresh(name: str) -> Iterator[tuple[types.ModuleType, list[warnings.WarningMessage]]]:
    """Import ``name`` as if for the first time (it warns only then), recording warnings; the
    previous ``sys.modules`` entry and parent attribute are put back afterwards."""
    parent_name, _, child = name.rpartition(".")
    parent = importlib.import_module(parent_name)
    missing = object()
    saved_module = sys.modules.pop(name, None)
    saved_attr = parent.__dict__.pop(child, missing)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = importlib.import_module(name)
        yield module, caught
    finally:
        if saved_module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = saved_module
        if saved_attr is missing:
            parent.__dict__.pop(child, None)
        else:
            parent.__dict__[child] = saved_attr


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_first_import_warns_naming_the_new_path(name: str) -> None:
    new, _ = ALIASES[name]
    with _fresh(name) as (_, caught):
        deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1, [str(w.message) for w in caught]
    message = str(deprecations[0].message)
    assert f"{name} is deprecated" in message
    assert new in message


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_reexports_every_name_of_the_old_module(name: str) -> None:
    new_name, old_names = ALIASES[name]
    new = importlib.import_module(new_name)
    with _fresh(name) as (alias, _):
        missing = [n for n in old_names if not hasattr(alias, n)]
        assert not missing, f"{name} lost {missing}"
        for attr in old_names:
            if attr in DERIVED:
                assert getattr(alias, attr) == DERIVED[attr]
            else:
                assert getattr(alias, attr) is getattr(new, attr), attr
        # `from <alias> import *` offers the old names too (main was never in __all__)
        assert set(old_names) - {"main"} <= set(alias.__all__)
        assert set(new.__all__) <= set(alias.__all__)


def test_derived_baggage_keys_are_the_identity_attributes() -> None:
    from posthog_otel import _identity
    from posthog_otel.propagation.baggage import encode, parse_header

    with _fresh("posthog_otel.baggage") as (alias, _):
        keys = (alias.DISTINCT_ID_KEY, alias.SESSION_ID_KEY, alias.WINDOW_ID_KEY)
    assert keys == tuple(f.attribute for f in _identity.FIELDS[:3])
    header = encode({"distinct_id": "u1", "session_id": "s1", "window_id": "w1"}, {}).alone
    assert header == f"{keys[0]}=u1,{keys[1]}=s1,{keys[2]}=w1"
    assert parse_header(header).distinct_id == "u1"


# -- in a fresh interpreter ---------------------------------------------------------------


@pytest.mark.slow
def test_a_fresh_interpreter_warns_once_at_the_importing_line() -> None:
    code = (
        "import json, warnings\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        f"    for name in {sorted(ALIASES)!r}:\n"
        "        __import__(name)\n"
        "        __import__(name)\n"  # a second import is served from sys.modules: no warning
        "print(json.dumps([[str(w.message), w.filename, w.lineno] for w in caught\n"
        "                  if issubclass(w.category, DeprecationWarning)]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    caught = json.loads(result.stdout)
    assert [message.split(" ")[0] for message, _, _ in caught] == sorted(ALIASES)
    # attributed to the line that imported the alias, so -W filters by module work
    assert {(filename, lineno) for _, filename, lineno in caught} == {("<string>", 6)}


@contextmanager
def _serving(module: str) -> Iterator[tuple[str, subprocess.Popen[str], list[str]]]:
    """``python -m <module> --port 0``: its URL, the process, and (after the block, which ends
    with SIGINT as a user's Ctrl-C would) its stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr: list[str] = []
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=30)
        url = proc.stdout.readline().strip() if ready else ""
        assert url.startswith("http://127.0.0.1:"), f"{module} printed no URL: {url!r}"
        yield url, proc, stderr
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            stderr.append(proc.communicate(timeout=20)[1])
        except subprocess.TimeoutExpired:
            proc.kill()
            stderr.append(proc.communicate()[1])


@pytest.mark.slow
@pytest.mark.parametrize(
    "module", ["posthog_otel.capture_server", "posthog_otel.testing.capture_server"]
)
def test_run_as_a_script_it_serves_until_interrupted(module: str) -> None:
    with _serving(module) as (url, proc, stderr):
        batch = {"api_key": "phc_x", "batch": [{"event": "e", "uuid": "u-1"}], "sent_at": "now"}
        assert requests.post(f"{url}/batch/", json=batch, timeout=5).status_code == 200
        assert requests.get(f"{url}/_stats", timeout=5).json() == {"events": 1, "unique": 1}
        assert proc.poll() is None  # still serving
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr[0]
    moved = "run python -m posthog_otel.testing.capture_server" in stderr[0]
    assert moved == (module == "posthog_otel.capture_server"), stderr


@pytest.mark.slow
def test_the_old_script_tells_where_it_moved() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "posthog_otel.capture_server", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout  # the same argument parser as the new entry point
    assert "run python -m posthog_otel.testing.capture_server" in result.stderr
