"""Tests for posthog_otel.errors: $exception_list from live exceptions and from text."""

from __future__ import annotations

import builtins
import gc
import json
import os
import sys
import threading
import traceback
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import posthog_otel
from posthog_otel.errors import (
    FrameOptions,
    exception_list,
    exception_list_from_stacktrace,
    is_captured,
    mark_captured,
)
from tests.support.exc_fixtures import raisers

ROOT = Path(__file__).resolve().parents[3]
OPTIONS = FrameOptions(project_root=str(ROOT))
FIXTURE = Path(raisers.__file__).resolve()
FIXTURE_LINES = FIXTURE.read_text().splitlines()
FIXTURE_MODULE = raisers.__name__  # "tests.support.exc_fixtures.raisers"
FIXTURE_PACKAGE = FIXTURE_MODULE.rpartition(".")[0]
PACKAGE_DIR = Path(posthog_otel.__file__).resolve().parent
EXCEPTION_GROUP: Any = getattr(builtins, "ExceptionGroup", None)
needs_groups = pytest.mark.skipif(EXCEPTION_GROUP is None, reason="ExceptionGroup is 3.11+")


def line_of(marker: str) -> int:
    """Line number of the fixture line tagged ``# MARK: marker``."""
    for number, line in enumerate(FIXTURE_LINES, start=1):
        if line.endswith(f"# MARK: {marker}"):
            return number
    raise AssertionError(f"no marker {marker!r}")


def caught(fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except BaseException as exc:
        return exc
    raise AssertionError("expected an exception")


def frames_of(entry: dict[str, Any]) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = entry["stacktrace"]["frames"]
    return frames


def fixture_frames(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in frames_of(entry) if f["abs_path"] == str(FIXTURE)]


# --------------------------------------------------------------------------- live: frames


def test_frames_run_oldest_first_with_exact_source_context() -> None:
    exc = caught(raisers.call_plain)
    [entry] = exception_list(exc, options=OPTIONS)

    assert entry["type"] == "ValueError"
    assert entry["value"] == "boom"
    assert entry["module"] is None
    assert entry["mechanism"] == {
        "exception_id": 0,
        "type": "generic",
        "handled": True,
        "synthetic": False,
    }
    assert entry["stacktrace"]["type"] == "raw"
    frames = frames_of(entry)
    assert [f["function"] for f in frames] == ["caught", "call_plain", "fail_plain"]
    assert frames[0]["abs_path"] == __file__
    assert frames[0]["filename"] == os.path.join("tests", "unit", "errors", "test_exceptions.py")

    raise_frame = frames[-1]
    line = line_of("plain")
    assert raise_frame == {
        "platform": "python",
        "filename": os.path.join("tests", "support", "exc_fixtures", "raisers.py"),
        "abs_path": str(FIXTURE),
        "function": "fail_plain",
        "module": FIXTURE_MODULE,
        "lineno": line,
        "in_app": True,
        "pre_context": FIXTURE_LINES[line - 6 : line - 1],
        "context_line": FIXTURE_LINES[line - 1],
        "post_context": FIXTURE_LINES[line : line + 5],
    }
    assert frames[1]["lineno"] == line_of("call_plain")
    assert frames[1]["context_line"] == "    fail_plain()  # MARK: call_plain"


def test_context_lines_option_and_unhandled_flag() -> None:
    exc = caught(raisers.call_plain)
    [entry] = exception_list(exc, handled=False, options=FrameOptions(context_lines=1))
    frame = frames_of(entry)[-1]
    line = line_of("plain")
    assert entry["mechanism"]["handled"] is False
    assert frame["pre_context"] == [FIXTURE_LINES[line - 2]]
    assert frame["post_context"] == [FIXTURE_LINES[line]]

    [entry] = exception_list(exc, options=FrameOptions(context_lines=0))
    frame = frames_of(entry)[-1]
    assert (frame["pre_context"], frame["post_context"]) == ([], [])
    assert frame["context_line"] == FIXTURE_LINES[line - 1]


def test_plain_function_names_with_qualified_names_beside_them() -> None:
    [entry] = exception_list(caught(raisers.Service().handle), options=OPTIONS)
    assert entry["type"] == "Outer.InnerError"
    assert entry["module"] == FIXTURE_MODULE
    assert [(f["function"], f.get("qualname")) for f in fixture_frames(entry)] == [
        ("handle", "Service.handle"),
        ("step", "Service.handle.<locals>.step"),
    ]
    [entry] = exception_list(caught(raisers.call_via_lambda), options=OPTIONS)
    names = [(f["function"], f.get("qualname")) for f in fixture_frames(entry)]
    expected_lambda = "call_via_lambda.<locals>.<lambda>" if sys.version_info >= (3, 11) else None
    assert names == [
        ("call_via_lambda", None),
        ("<lambda>", expected_lambda),
        ("fail_plain", None),
    ]


def test_stdlib_frames_leave_in_app_unset_as_posthog_python_does() -> None:
    exc = caught(lambda: json.loads("{"))
    [entry] = exception_list(exc, options=OPTIONS)
    assert (entry["type"], entry["module"]) == ("JSONDecodeError", "json.decoder")
    frames = frames_of(entry)
    assert frames[0]["in_app"] is True  # this test file, under the project root
    stdlib = [f for f in frames if f["module"].startswith("json")]
    assert stdlib, "expected frames inside the json package"
    assert all("in_app" not in f for f in stdlib)
    assert stdlib[0]["filename"] == "__init__.py"  # module json: the file's own name
    assert stdlib[-1]["filename"] == os.path.join("json", "decoder.py")
    assert stdlib[-1]["module"] == "json.decoder"


def test_site_packages_frames_are_not_in_app_even_inside_the_project_root() -> None:
    exc = caught(lambda: requests.Request("GET", "not a url").prepare())
    entry = exception_list(exc, options=OPTIONS)[0]
    assert entry["module"] == "requests.exceptions"
    library = [f for f in frames_of(entry) if "site-packages" in f["abs_path"]]
    assert library, "expected frames inside requests"
    assert all(f["in_app"] is False for f in library)
    assert library[-1]["filename"] == "requests/models.py"
    assert library[-1]["abs_path"].endswith(os.path.join("site-packages", "requests", "models.py"))
    assert library[-1]["module"] == "requests.models"


def test_in_app_modules_match_whole_module_names_only() -> None:
    exc = caught(raisers.call_plain)
    [entry] = exception_list(exc, options=FrameOptions(in_app_modules=(FIXTURE_PACKAGE,)))
    assert all(f["in_app"] is True for f in fixture_frames(entry))
    assert "in_app" not in frames_of(entry)[0]  # this file: no project root, no module match

    [entry] = exception_list(exc, options=FrameOptions(in_app_modules=(FIXTURE_PACKAGE[:-3],)))
    assert all("in_app" not in f for f in frames_of(entry))

    req = caught(lambda: requests.Request("GET", "not a url").prepare())
    entry = exception_list(req, options=FrameOptions(in_app_modules=("requests",)))[0]
    assert frames_of(entry)[-1]["in_app"] is True
    entry = exception_list(req, options=FrameOptions(in_app_modules=("request",)))[0]
    assert frames_of(entry)[-1]["in_app"] is False


def test_frames_of_this_package_are_never_in_app() -> None:
    options = FrameOptions(project_root=str(ROOT), in_app_modules=("posthog_otel",))
    exc = caught(lambda: setattr(options, "context_lines", 1))  # frozen dataclass __setattr__
    [entry] = exception_list(exc, options=options)
    own = [f for f in frames_of(entry) if f.get("module") == "posthog_otel.errors.frames"]
    assert own, "the dataclass-generated __setattr__ runs with this package's globals"
    assert all(f["in_app"] is False for f in own)


def test_frames_in_this_package_are_named_from_the_package_root() -> None:
    path = PACKAGE_DIR / "errors" / "frames.py"
    lineno, line = next(
        (number, text)
        for number, text in enumerate(path.read_text().splitlines(), start=1)
        if text.startswith("class FrameOptions")
    )
    text = (
        "Traceback (most recent call last):\n"
        f'  File "{path}", line {lineno}, in <module>\n'
        f"    {line}\n"
        "ValueError: boom\n"
    )
    [frame] = frames_of(exception_list_from_stacktrace(text)[0])
    assert frame["filename"] == "posthog_otel/errors/frames.py"
    assert frame["context_line"] == line
    assert frame["in_app"] is False


def test_frame_count_is_capped_keeping_the_frames_nearest_the_raise() -> None:
    exc = caught(lambda: raisers.recurse(0))
    [entry] = exception_list(exc, options=OPTIONS)
    frames = frames_of(entry)
    assert entry["type"] == "RecursionError"
    assert len(frames) == 200
    assert {f["function"] for f in frames} == {"recurse"}


# --------------------------------------------------------------------------- live: chains


def test_raise_from_lists_the_cause_after_the_outer_exception() -> None:
    entries = exception_list(caught(raisers.fail_with_cause), handled=False, options=OPTIONS)
    assert [(e["type"], e["value"], e["module"]) for e in entries] == [
        ("PaymentError", "declined", FIXTURE_MODULE),
        ("ValueError", "root", None),
    ]
    assert [e["mechanism"] for e in entries] == [
        {"exception_id": 0, "type": "generic", "handled": False, "synthetic": False},
        {
            "exception_id": 1,
            "parent_id": 0,
            "source": "cause",
            "type": "chained",
            "synthetic": False,
        },
    ]
    assert fixture_frames(entries[0])[-1]["lineno"] == line_of("from")
    assert [f["lineno"] for f in fixture_frames(entries[1])] == [
        line_of("cause_call"),
        line_of("plain"),
    ]


def test_implicit_context_is_followed() -> None:
    entries = exception_list(caught(raisers.fail_during_handling), options=OPTIONS)
    assert [e["type"] for e in entries] == ["RuntimeError", "KeyError"]
    assert entries[1]["value"] == "'missing'"
    assert frames_of(entries[1])[-1]["lineno"] == line_of("keyerror")


def test_from_none_suppresses_the_context() -> None:
    entries = exception_list(caught(raisers.fail_from_none), options=OPTIONS)
    assert [e["type"] for e in entries] == ["PaymentError"]


def test_cause_wins_over_context() -> None:
    exc = caught(raisers.fail_during_handling)
    exc.__cause__ = LookupError("explicit")
    entries = exception_list(exc, options=OPTIONS)
    assert [e["type"] for e in entries] == ["RuntimeError", "LookupError"]
    assert "stacktrace" not in entries[1]  # never raised, and not the outermost


def test_cycles_end_the_chain() -> None:
    first, second = ValueError("first"), KeyError("second")
    first.__context__, second.__context__ = second, first
    assert [e["value"] for e in exception_list(first)] == ["first", "'second'"]

    itself = ValueError("self")
    itself.__cause__ = itself
    assert len(exception_list(itself)) == 1


def test_long_chains_are_capped() -> None:
    exc: BaseException = ValueError("0")
    for index in range(1, 300):
        outer = ValueError(str(index))
        outer.__context__ = exc
        exc = outer
    entries = exception_list(exc)
    assert len(entries) == 50
    assert entries[0]["value"] == "299"
    assert entries[-1]["value"] == "250"


# --------------------------------------------------------------------------- live: groups


@needs_groups
def test_exception_group_members_follow_the_group_with_ids() -> None:
    inner = EXCEPTION_GROUP("inner", [TypeError("t"), KeyError("k")])
    exc = caught(lambda: _raise(EXCEPTION_GROUP("outer", [ValueError("v"), inner])))
    entries = exception_list(exc, options=OPTIONS)

    assert [e["type"] for e in entries] == [
        "ExceptionGroup",
        "ValueError",
        "ExceptionGroup",
        "TypeError",
        "KeyError",
    ]
    assert entries[0]["value"] == "outer"  # the group's message, as posthog-python sends it

    def member(exception_id: int, parent_id: int, **more: Any) -> dict[str, Any]:
        return {
            "exception_id": exception_id,
            "parent_id": parent_id,
            "source": "member",
            "type": "chained",
            "synthetic": False,
            **more,
        }

    assert [e["mechanism"] for e in entries] == [
        {
            "exception_id": 0,
            "type": "generic",
            "handled": True,
            "synthetic": False,
            "is_exception_group": True,
        },
        member(1, 0),
        member(2, 0, is_exception_group=True),
        member(3, 2),
        member(4, 2),
    ]
    assert "stacktrace" in entries[0]
    assert all("stacktrace" not in e for e in entries[1:])  # members were never raised


@needs_groups
def test_causes_of_group_members_follow_the_member() -> None:
    entries = exception_list(caught(raisers.fail_group), options=OPTIONS)
    summary = [
        (e["type"], e["mechanism"].get("parent_id"), e["mechanism"]["source"]) for e in entries[1:]
    ]
    assert entries[0]["type"] == "ExceptionGroup"
    assert summary == [
        ("ValueError", 0, "member"),
        ("PaymentError", 0, "member"),
        ("ValueError", 2, "cause"),
        ("ExceptionGroup", 0, "member"),
        ("KeyError", 4, "member"),
    ]
    assert fixture_frames(entries[0])[-1]["lineno"] == line_of("group")
    assert fixture_frames(entries[2])[-1]["lineno"] == line_of("from")


def _raise(exc: BaseException) -> None:
    raise exc


# --------------------------------------------------------------------------- live: not raised


def test_never_raised_exception_gets_the_callers_stack() -> None:
    exc = ValueError("not raised")
    entries, call_line = exception_list(exc, handled=False), sys._getframe().f_lineno
    [entry] = entries
    frames = frames_of(entry)
    assert entry["mechanism"] == {
        "exception_id": 0,
        "type": "generic",
        "handled": False,
        "synthetic": True,
    }
    assert frames[-1]["function"] == "test_never_raised_exception_gets_the_callers_stack"
    assert frames[-1]["abs_path"] == __file__
    assert frames[-1]["lineno"] == call_line
    assert len(frames) > 1 and frames[0]["abs_path"] != __file__  # pytest's frames come first
    for frame in frames:
        assert not frame["abs_path"].startswith(str(PACKAGE_DIR))
        assert not (frame.get("module") or "").startswith("posthog_otel")


def test_never_raised_exception_from_a_helper_stops_at_the_helper() -> None:
    [entry] = raisers.report(KeyError("k"))
    top = frames_of(entry)[-1]
    assert (top["function"], top["lineno"]) == ("report", line_of("report"))
    assert frames_of(entry)[-2]["function"] == (
        "test_never_raised_exception_from_a_helper_stops_at_the_helper"
    )


# --------------------------------------------------------------------------- live: robustness


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_unprintable_exception_still_gets_an_entry() -> None:
    exc = caught(lambda: _raise(_Unprintable()))
    [entry] = exception_list(exc)
    assert entry["type"] == "_Unprintable"
    assert entry["value"] == "_Unprintable()"  # repr() when str() fails
    assert frames_of(entry)[-1]["function"] == "_raise"


def test_garbage_input_never_raises() -> None:
    assert exception_list("not an exception") == []  # type: ignore[arg-type]
    assert exception_list((None, None, None)) == []


def test_output_is_json_serializable() -> None:
    entries = exception_list(caught(raisers.fail_with_cause), options=OPTIONS)
    assert json.loads(json.dumps(entries)) == entries


# --------------------------------------------------------------------------- mark_captured


class _NoAttributes(Exception):
    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("read-only exception")


class _NoAttributesNoWeakref(Exception):
    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("read-only exception")


class _HostileGetattr(Exception):
    def __getattribute__(self, name: str) -> Any:
        if name.startswith("__posthog"):
            raise RuntimeError("do not look")
        return super().__getattribute__(name)


@pytest.mark.parametrize(
    "factory", [ValueError, _NoAttributes, _NoAttributesNoWeakref, _HostileGetattr]
)
def test_mark_captured_is_true_once_per_object(factory: Callable[[str], BaseException]) -> None:
    exc, other = factory("x"), factory("x")
    assert not is_captured(exc)
    assert mark_captured(exc) is True
    assert is_captured(exc)
    assert mark_captured(exc) is False
    assert mark_captured(exc) is False
    assert not is_captured(other)
    assert mark_captured(other) is True


def test_mark_fallback_does_not_keep_exceptions_alive() -> None:
    exc = _NoAttributes("x")
    assert mark_captured(exc) is True
    assert "__posthog_otel_captured__" not in vars(exc)  # the fallback registry was used
    ref = weakref.ref(exc)
    del exc
    gc.collect()
    assert ref() is None


def test_mark_captured_from_many_threads_wins_once() -> None:
    exc = _NoAttributes("race")
    barrier = threading.Barrier(16)
    results: list[bool] = []

    def worker() -> None:
        barrier.wait()
        results.append(mark_captured(exc))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 15 + [True]


# --------------------------------------------------------------------------- round trip

ROUND_TRIP_FRAME_KEYS = (
    "platform",
    "filename",
    "abs_path",
    "function",
    "lineno",
    "pre_context",
    "context_line",
    "post_context",
    "in_app",
)


def _comparable(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "type": e["type"],
            "value": e["value"],
            "module": e["module"],
            "mechanism": e["mechanism"],
            "frames": [
                {key: f.get(key) for key in ROUND_TRIP_FRAME_KEYS}
                for f in e.get("stacktrace", {}).get("frames", [])
            ],
        }
        for e in entries
    ]


ROUND_TRIP_CASES: dict[str, Callable[[], object]] = {
    "plain": raisers.call_plain,
    "raise from": raisers.fail_with_cause,
    "context": raisers.fail_during_handling,
    "from None": raisers.fail_from_none,
    "unraised cause": raisers.fail_from_unraised,
    "method": raisers.Service().handle,
    "lambda": raisers.call_via_lambda,
    "recursion": lambda: raisers.recurse(0),
    "syntax error": lambda: compile("x = (\n", "generated.py", "exec"),
    "stdlib": lambda: json.loads("{"),
    "site-packages": lambda: requests.Request("GET", "not a url").prepare(),
}
if EXCEPTION_GROUP is not None:
    ROUND_TRIP_CASES["exception group"] = raisers.fail_group


@pytest.mark.parametrize("case", ROUND_TRIP_CASES)
def test_parsed_traceback_text_matches_the_live_exception(case: str) -> None:
    exc = caught(ROUND_TRIP_CASES[case])
    live = exception_list(exc, handled=False, options=OPTIONS)
    text = "".join(traceback.format_exception(exc))
    parsed = exception_list_from_stacktrace(text, handled=False, options=OPTIONS)
    assert live and any("stacktrace" in e for e in live)
    assert _comparable(parsed) == _comparable(live)


def test_round_trip_with_otel_attributes() -> None:
    exc = caught(raisers.fail_with_cause)
    cls = type(exc)
    parsed = exception_list_from_stacktrace(
        "".join(traceback.format_exception(exc)),
        exc_type=f"{cls.__module__}.{cls.__qualname__}",  # what span.record_exception stores
        message=str(exc),
        options=OPTIONS,
    )
    assert _comparable(parsed) == _comparable(exception_list(exc, handled=False, options=OPTIONS))


# --------------------------------------------------------------------------- parser details


MISSING_FILE_TRACE = """\
Traceback (most recent call last):
  File "/nonexistent/srv/app.py", line 12, in <module>
    main()
  File "/nonexistent/srv/app.py", line 8, in main
    total = price["amount"] / count
            ~~~~~~~~~~~~~~~~^~~~~~~
  File "/nonexistent/srv/app.py", line 3, in helper
  [Previous line repeated 2 more times]
mod.sub.CheckoutError: could not
total the cart
"""


def test_frames_of_files_we_do_not_have_keep_the_text_line() -> None:
    [entry] = exception_list_from_stacktrace(MISSING_FILE_TRACE, options=OPTIONS)
    assert (entry["type"], entry["module"]) == ("CheckoutError", "mod.sub")
    assert entry["value"] == "could not\ntotal the cart"
    assert entry["mechanism"] == {
        "exception_id": 0,
        "type": "generic",
        "handled": False,
        "synthetic": False,
    }
    frames = frames_of(entry)
    assert [(f["function"], f["lineno"]) for f in frames] == [
        ("<module>", 12),
        ("main", 8),
        ("helper", 3),
        ("helper", 3),
        ("helper", 3),
    ]
    main = frames[1]
    assert main["context_line"] == 'total = price["amount"] / count'  # not the caret line
    assert (main["pre_context"], main["post_context"]) == ([], [])
    # No module known: the path is the filename, as posthog-python has it for such frames.
    path = "/nonexistent/srv/app.py"
    assert (main["filename"], main["abs_path"]) == (path, path)
    assert "in_app" not in main and main["module"] is None
    assert frames[2]["context_line"] is None


def test_a_changed_local_file_is_not_used_for_context() -> None:
    line = line_of("plain")
    text = (
        "Traceback (most recent call last):\n"
        f'  File "{FIXTURE}", line {line}, in fail_plain\n'
        "    this_is_not_what_the_file_says()\n"
        "ValueError: stale\n"
    )
    [entry] = exception_list_from_stacktrace(text, options=OPTIONS)
    frame = frames_of(entry)[0]
    assert frame["context_line"] == "this_is_not_what_the_file_says()"
    assert frame["pre_context"] == []
    assert frame["in_app"] is True


def test_chain_sections_are_reordered_outermost_first() -> None:
    text = """\
Traceback (most recent call last):
  File "/nonexistent/a.py", line 1, in a
    a()
KeyError: 'root'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/nonexistent/b.py", line 2, in b
    b()
ValueError: middle

The above exception was the direct cause of the following exception:

RuntimeError: outer
"""
    entries = exception_list_from_stacktrace(text)
    assert [(e["type"], e["value"]) for e in entries] == [
        ("RuntimeError", "outer"),
        ("ValueError", "middle"),
        ("KeyError", "'root'"),
    ]
    assert "stacktrace" not in entries[0]
    assert frames_of(entries[2])[0]["abs_path"] == "/nonexistent/a.py"


GROUP_TRACE = """\
  + Exception Group Traceback (most recent call last):
  |   File "/nonexistent/g.py", line 23, in <module>
  |     grp()
  | ExceptionGroup: outer (3 sub-exceptions)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File "/nonexistent/g.py", line 3, in a
    |     raise ValueError("a")
    | ValueError: a
    +---------------- 2 ----------------
    | Traceback (most recent call last):
    |   File "/nonexistent/g.py", line 3, in a
    |     raise ValueError("a")
    | ValueError: a
    |{space}
    | The above exception was the direct cause of the following exception:
    |{space}
    | KeyError: 'k'
    +---------------- 3 ----------------
    | ExceptionGroup: inner (2 sub-exceptions)
    +-+---------------- 1 ----------------
      | TypeError: t
      +---------------- 2 ----------------
      | ... (max_group_depth is 10)
      +------------------------------------

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/nonexistent/g.py", line 25, in <module>
    raise RuntimeError("wrap") from g
RuntimeError: wrap
""".format(space=" ")


def test_exception_group_text_is_parsed_into_members() -> None:
    entries = exception_list_from_stacktrace(GROUP_TRACE)
    summary = [
        (e["type"], e["value"], e["mechanism"]["type"], e["mechanism"].get("parent_id"))
        for e in entries
    ]
    assert summary == [
        ("RuntimeError", "wrap", "generic", None),
        ("ExceptionGroup", "outer", "chained", 0),  # the message, as a live group reads
        ("ValueError", "a", "chained", 1),
        ("KeyError", "'k'", "chained", 1),
        ("ValueError", "a", "chained", 3),
        ("ExceptionGroup", "inner", "chained", 1),
        ("TypeError", "t", "chained", 5),
    ]
    assert entries[1]["mechanism"]["is_exception_group"] is True
    assert entries[1]["mechanism"]["exception_id"] == 1
    assert [e["mechanism"].get("source") for e in entries] == [
        None,
        "cause",
        "member",
        "member",
        "cause",
        "member",
        "member",
    ]
    assert frames_of(entries[1])[0]["lineno"] == 23
    assert frames_of(entries[2])[0]["context_line"] == 'raise ValueError("a")'


def test_syntax_error_block_is_not_a_frame() -> None:
    text = """\
Traceback (most recent call last):
  File "/nonexistent/load.py", line 4, in load
    compile(source, "conf.py", "exec")
  File "conf.py", line 1
    x = (
        ^
SyntaxError: '(' was never closed
"""
    [entry] = exception_list_from_stacktrace(text)
    assert entry["value"] == "'(' was never closed (conf.py, line 1)"
    assert [f["function"] for f in frames_of(entry)] == ["load"]


def test_explicit_type_and_message_override_the_text() -> None:
    text = 'Traceback (most recent call last):\n  File "/x/y.py", line 1, in f\nE: short\n'
    [entry] = exception_list_from_stacktrace(
        text, exc_type="myapp.errors.PaymentError", message="full message"
    )
    assert (entry["type"], entry["module"], entry["value"]) == (
        "PaymentError",
        "myapp.errors",
        "full message",
    )
    assert frames_of(entry)[0]["function"] == "f"

    qualified = "Traceback (most recent call last):\nmyapp.errors.PaymentError: x\n"
    [entry] = exception_list_from_stacktrace(qualified, exc_type="PaymentError")
    assert (entry["type"], entry["module"]) == ("PaymentError", "myapp.errors")

    [entry] = exception_list_from_stacktrace(qualified, exc_type="builtins.ValueError")
    assert (entry["type"], entry["module"]) == ("ValueError", None)


def test_type_names_resolve_nested_classes_of_loaded_modules() -> None:
    [entry] = exception_list_from_stacktrace(f"{FIXTURE_MODULE}.Outer.InnerError: nested\n")
    assert (entry["type"], entry["module"]) == ("Outer.InnerError", FIXTURE_MODULE)


def test_missing_or_empty_text() -> None:
    assert exception_list_from_stacktrace(None) == []
    assert exception_list_from_stacktrace("   \n") == []
    [entry] = exception_list_from_stacktrace(None, exc_type="ValueError", message="m")
    assert entry == {
        "type": "ValueError",
        "value": "m",
        "module": None,
        "mechanism": {"exception_id": 0, "type": "generic", "handled": False, "synthetic": False},
    }


def test_text_that_is_no_stack_trace_gives_one_entry_without_frames() -> None:
    [entry] = exception_list_from_stacktrace(
        "something went wrong\nsomewhere", exc_type="app.Failure", message="something", handled=True
    )
    assert entry == {
        "type": "Failure",
        "value": "something",
        "module": "app",
        "mechanism": {"exception_id": 0, "type": "generic", "handled": True, "synthetic": False},
    }


def test_oversized_text_is_clipped_and_frames_capped() -> None:
    frame = '  File "/nonexistent/deep.py", line 7, in step\n    step()\n'
    text = "Traceback (most recent call last):\n" + frame * 20_000 + "ValueError: too deep\n"
    assert len(text) > 1_000_000
    [entry] = exception_list_from_stacktrace(text)
    assert entry["value"] == "too deep"
    assert len(frames_of(entry)) == 200
    assert frames_of(entry)[-1]["function"] == "step"


# --------------------------------------------------------------------------- other languages

JAVA_TRACE = """\
Exception in thread "main" java.lang.IllegalStateException: order 42 is closed
\tat com.shop.orders.OrderService.close(OrderService.java:88)
\tat com.shop.api.OrderController.post(OrderController.java:41)
\tat java.base/java.lang.Thread.run(Thread.java:833)
\tSuppressed: java.lang.RuntimeException: cleanup failed
\t\tat com.shop.storage.Disk.close(Disk.java:30)
Caused by: java.io.IOException: disk full
\tat com.shop.storage.Disk.write(Native Method)
\tat com.shop.storage.Disk.flush(Disk.java:12)
\t... 3 more
"""


def test_java_stack_trace() -> None:
    entries = exception_list_from_stacktrace(JAVA_TRACE)
    assert [(e["type"], e["module"], e["value"]) for e in entries] == [
        ("IllegalStateException", "java.lang", "order 42 is closed"),
        ("IOException", "java.io", "disk full"),
    ]
    assert frames_of(entries[0]) == [
        {
            "platform": "java",
            "function": "run",
            "module": "java.lang.Thread",
            "in_app": False,
            "filename": "Thread.java",
            "lineno": 833,
        },
        {
            "platform": "java",
            "function": "post",
            "module": "com.shop.api.OrderController",
            "in_app": True,
            "filename": "OrderController.java",
            "lineno": 41,
        },
        {
            "platform": "java",
            "function": "close",
            "module": "com.shop.orders.OrderService",
            "in_app": True,
            "filename": "OrderService.java",
            "lineno": 88,
        },
    ]
    assert frames_of(entries[1]) == [
        {
            "platform": "java",
            "function": "flush",
            "module": "com.shop.storage.Disk",
            "in_app": True,
            "filename": "Disk.java",
            "lineno": 12,
        },
        {
            "platform": "java",
            "function": "write",
            "module": "com.shop.storage.Disk",
            "in_app": True,
        },
    ]


NODE_TRACE = """\
TypeError: Cannot read properties of undefined (reading 'id')
    at JSON.parse (<anonymous>)
    at getUser (/srv/app/users.js:12:19)
    at async Promise.all (index 0)
    at /srv/app/server.js:40:5
    at Layer.handle [as handle_request] (/srv/app/node_modules/express/lib/router/layer.js:95:5)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)
"""


def test_node_stack_trace() -> None:
    [entry] = exception_list_from_stacktrace(NODE_TRACE, exc_type="TypeError")
    assert entry["value"] == "Cannot read properties of undefined (reading 'id')"
    assert entry["type"] == "TypeError"
    node = "node:javascript"
    assert frames_of(entry) == [
        {
            "platform": node,
            "filename": "node:internal/process/task_queues",
            "function": "process.processTicksAndRejections",
            "lineno": 95,
            "colno": 5,
            "in_app": False,
        },
        {
            "platform": node,
            "filename": "/srv/app/node_modules/express/lib/router/layer.js",
            "function": "Layer.handle [as handle_request]",
            "lineno": 95,
            "colno": 5,
            "in_app": False,
        },
        {
            "platform": node,
            "filename": "/srv/app/server.js",
            "function": "<anonymous>",
            "lineno": 40,
            "colno": 5,
            "in_app": True,
        },
        {"platform": node, "filename": "index 0", "function": "Promise.all", "in_app": False},
        {
            "platform": node,
            "filename": "/srv/app/users.js",
            "function": "getUser",
            "lineno": 12,
            "colno": 19,
            "in_app": True,
        },
        # the innermost frame is V8's own: kept, and not in app
        {"platform": node, "filename": "<anonymous>", "function": "JSON.parse", "in_app": False},
    ]


@pytest.mark.parametrize(
    ("filename", "in_app"),
    [
        ("/srv/app/routes/users.js", True),
        ("./lib/users.js", True),
        ("file:///srv/app/server.mjs", True),
        ("C:\\app\\server.js", True),
        ("C:\\app\\node_modules\\pg\\lib\\client.js", False),
        ("/srv/app/node_modules/.pnpm/pg@8/node_modules/pg/lib/client.js", False),
        ("node:internal/process/task_queues", False),
        ("node:events", False),
        ("internal/timers.js", False),
        ("events.js", False),
    ],
)
def test_node_frames_in_app_by_their_file(filename: str, in_app: bool) -> None:
    [entry] = exception_list_from_stacktrace(f"Error: x\n    at f ({filename}:2:3)\n")
    [frame] = frames_of(entry)
    assert (frame["filename"], frame["in_app"]) == (filename, in_app)


@pytest.mark.parametrize(
    "line",
    [
        "    at Array.map (native)",
        "    at async Promise.any (index 12)",
        "    at eval (<anonymous>)",
    ],
)
def test_node_builtin_frames_are_kept_as_library_frames(line: str) -> None:
    [entry] = exception_list_from_stacktrace(f"Error: x\n{line}\n    at f (/srv/a.js:1:1)\n")
    builtin, own = frames_of(entry)[::-1]
    assert builtin["in_app"] is False and "lineno" not in builtin
    assert line.strip().endswith(f"({builtin['filename']})")
    assert own["in_app"] is True


def test_node_lines_that_only_look_like_builtin_frames_are_not_frames() -> None:
    text = "Error: x\n    at f (/srv/a.js:1:1)\n    at g (index zero)\n    at (native)\n"
    [entry] = exception_list_from_stacktrace(text)
    assert [f["function"] for f in frames_of(entry)] == ["f"]


@pytest.mark.parametrize(
    ("line", "function", "filename"),
    [
        ("    at async handler (/srv/a.js:2:3)", "handler", "/srv/a.js"),
        ("    at new Widget (/srv/w.js:2:3)  ", "new Widget", "/srv/w.js"),
        ("\tat async /srv/a.js:2:3", "<anonymous>", "/srv/a.js"),
        (
            "    at eval (eval at <anonymous> (/srv/e.js:9:9), <anonymous>:2:3)",
            "eval",
            "eval at <anonymous> (/srv/e.js:9:9), <anonymous>",
        ),
    ],
)
def test_node_frame_lines_split_at_the_first_opening_and_the_last_closing(
    line: str, function: str, filename: str
) -> None:
    [entry] = exception_list_from_stacktrace(f"Error: x\n{line}\n")
    [frame] = frames_of(entry)
    assert (frame["function"], frame["filename"], frame["lineno"], frame["colno"]) == (
        function,
        filename,
        2,
        3,
    )


@pytest.mark.parametrize(
    ("frame", "in_app"),
    [
        ("com.example.shop.Payments.charge(Payments.java:8)", True),
        ("sun.net.httpserver.ServerImpl$Exchange.run(ServerImpl.java:802)", False),
        ("com.sun.net.httpserver.Filter$Chain.doFilter(Filter.java:95)", False),
        (  # the OpenTelemetry Java agent's filter, woven into the app's server
            "io.opentelemetry.javaagent.shaded.instrumentation.javahttpserver."
            "OpenTelemetryFilter.doFilter(OpenTelemetryFilter.java:36)",
            False,
        ),
        ("io.opentelemetry.sdk.trace.SdkSpan.end(SdkSpan.java:500)", True),
    ],
)
def test_jvm_frames_in_app_unless_runtime_or_the_java_agent(frame: str, in_app: bool) -> None:
    [entry] = exception_list_from_stacktrace(f"java.lang.IllegalStateException: x\n\tat {frame}\n")
    [parsed] = frames_of(entry)
    assert parsed["in_app"] is in_app


GO_TRACE = """\
panic: runtime error: index out of range [5] with length 3

goroutine 1 [running]:
main.lookup(...)
\t/home/dev/app/main.go:14
main.(*Server).handle(0xc000010000)
\t/home/dev/app/server.go:30 +0x1d
main.main()
\t/home/dev/app/main.go:9 +0x25

goroutine 7 [chan receive]:
main.worker()
\t/home/dev/app/worker.go:3 +0x11
exit status 2
"""


def test_go_panic() -> None:
    [entry] = exception_list_from_stacktrace(GO_TRACE)
    assert (entry["type"], entry["value"]) == (
        "panic",
        "runtime error: index out of range [5] with length 3",
    )
    assert [
        (f["platform"], f["function"], f["filename"], f["lineno"], f["in_app"])
        for f in frames_of(entry)
    ] == [
        ("go", "main.main", "/home/dev/app/main.go", 9, True),
        ("go", "main.(*Server).handle", "/home/dev/app/server.go", 30, True),
        ("go", "main.lookup", "/home/dev/app/main.go", 14, True),
    ]


@pytest.mark.parametrize(
    ("function", "filename", "in_app"),
    [
        ("runtime.gopanic", "/usr/local/go/src/runtime/panic.go", False),
        ("net/http.(*conn).serve", "/usr/local/go/src/net/http/server.go", False),
        ("encoding/json.Unmarshal", "/usr/lib/go/src/encoding/json/decode.go", False),
        (
            "github.com/gin-gonic/gin.(*Context).Next",
            "/root/go/pkg/mod/github.com/gin-gonic/gin@v1.9.1/context.go",
            False,
        ),
        (  # go build -trimpath names module-cache files module@version/file
            "go.opentelemetry.io/otel/sdk/trace.recordStackTrace",
            "go.opentelemetry.io/otel/sdk@v1.47.0/trace/span.go",
            False,
        ),
        ("example.com/shop/orders.Place", "example.com/shop/orders/place.go", True),
        ("example.com/shop@team/x.F", "example.com/shop@team/x.go", True),
        ("github.com/acme/shop/vendor/x.F", "/src/shop/vendor/x/f.go", False),
        ("github.com/acme/shop/orders.(*Service).Close", "/src/shop/orders/service.go", True),
        ("main.main", "/src/shop/main.go", True),
    ],
)
def test_go_frames_in_app_unless_runtime_standard_library_or_module_cache(
    function: str, filename: str, in_app: bool
) -> None:
    text = f"panic: boom\n\ngoroutine 1 [running]:\n{function}()\n\t{filename}:7 +0x1d\n"
    [entry] = exception_list_from_stacktrace(text)
    [frame] = frames_of(entry)
    assert (frame["function"], frame["in_app"]) == (function, in_app)


# --------------------------------------------------------------------------- fuzzing

TRACE_PIECES = [
    "Traceback (most recent call last):",
    "Exception Group Traceback (most recent call last):",
    '  File "/nonexistent/x.py", line 3, in f',
    f'  File "{FIXTURE}", line 1, in <module>',
    '  File "x.py", line 99999999999999999999',
    "    source()",
    "    ~~~^^",
    "  [Previous line repeated 999999999999 more times]",
    "ValueError: message",
    "pkg.<locals>.Error",
    "",
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
    "  + Exception Group Traceback (most recent call last):",
    "  | ExceptionGroup: g (1 sub-exception)",
    "  +-+---------------- 1 ----------------",
    "    +---------------- ... ----------------",
    "    | KeyError: 'k'",
    "      +------------------------------------",
    "\tat a.B.c(B.java:1)",
    "Caused by: x.Y: z",
    "    at fn (/a.js:1:2)",
    "main.f()",
    "\t/a/b.go:3 +0x1",
    "goroutine 1 [running]:",
]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(), exc_type=st.one_of(st.none(), st.text(min_size=1)))
def test_arbitrary_text_never_raises(text: str, exc_type: str | None) -> None:
    entries = exception_list_from_stacktrace(text, exc_type=exc_type)
    assert isinstance(entries, list)
    if exc_type is not None:
        assert len(entries) >= 1
        assert entries[0]["type"]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.one_of(st.sampled_from(TRACE_PIECES), st.text(max_size=30)), max_size=60))
def test_traceback_like_text_gives_well_formed_entries(pieces: list[str]) -> None:
    entries = exception_list_from_stacktrace("\n".join(pieces), exc_type="Boom")
    assert 1 <= len(entries) <= 50
    assert entries[0]["type"] == "Boom"
    for entry in entries:
        assert isinstance(entry["type"], str) and isinstance(entry["value"], str)
        assert entry["mechanism"]["type"] in ("generic", "chained")
        for frame in entry.get("stacktrace", {}).get("frames", []):
            assert isinstance(frame["function"], str) and isinstance(frame["filename"], str)
            assert 0 <= frame.get("lineno", 0) < 2**31
        assert len(entry.get("stacktrace", {}).get("frames", [])) <= 200
    json.dumps(entries)


@settings(deadline=None)
@given(
    links=st.lists(
        st.tuples(st.integers(0, 7), st.sampled_from(["cause", "context", "suppress", "group"])),
        max_size=20,
    )
)
def test_arbitrary_exception_graphs_never_raise(links: list[tuple[int, str]]) -> None:
    nodes: list[BaseException] = [ValueError(str(i)) for i in range(8)]
    for index, (target, kind) in enumerate(links):
        source = nodes[index % 8]
        if kind == "cause":
            source.__cause__ = nodes[target]
        elif kind == "context":
            source.__context__ = nodes[target]
        elif kind == "suppress":
            source.__suppress_context__ = True
        elif EXCEPTION_GROUP is not None:
            nodes[index % 8] = EXCEPTION_GROUP("g", [nodes[target], nodes[(target + 1) % 8]])
    entries = exception_list(nodes[0])
    assert 1 <= len(entries) <= 50
    ids = [e["mechanism"]["exception_id"] for e in entries if "exception_id" in e["mechanism"]]
    assert len(ids) == len(set(ids))
    json.dumps(entries)


# --------------------------------------------------------------------------- whose frames


def _one_frame_trace(path: Path, lineno: int, function: str) -> str:
    line = path.read_text().splitlines()[lineno - 1].strip()
    return (
        "Traceback (most recent call last):\n"
        f'  File "{path}", line {lineno}, in {function}\n'
        f"    {line}\n"
        "ValueError: boom\n"
    )


def test_instrumentor_frames_are_never_in_app_even_under_the_project_root() -> None:
    import posthog_otel.instrumentors.wsgi as wsgi

    path = Path(wsgi.__file__).resolve()
    assert str(path).startswith(str(ROOT))  # an editable checkout: inside the project root
    lineno = next(
        n for n, text in enumerate(path.read_text().splitlines(), 1) if "def __call__" in text
    )
    [entry] = exception_list_from_stacktrace(
        _one_frame_trace(path, lineno, "__call__"), options=OPTIONS
    )
    [frame] = frames_of(entry)
    assert frame["in_app"] is False


def test_demo_services_are_application_code() -> None:
    from posthog_otel.demo import services

    path = Path(services.__file__).resolve()
    lineno = next(
        n for n, text in enumerate(path.read_text().splitlines(), 1) if "def billing_app" in text
    )
    options = FrameOptions(project_root=str(path.parent))
    [entry] = exception_list_from_stacktrace(
        _one_frame_trace(path, lineno, "billing_app"), options=options
    )
    assert frames_of(entry)[0]["in_app"] is True
