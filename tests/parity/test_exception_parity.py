"""capture_exception() and contexts: the same exceptions give the same ``$exception`` events.

Every scenario runs on posthog-python's client and ours (see :mod:`.harness`); the events,
``$exception_list`` included (types, values, mechanisms, frames with their file names, context
lines and ``in_app``), must be equal after the listed normalisation.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any

import pytest

from . import _raisers
from .harness import Outcome, Side, assert_same


def _caught(fn: Any, *args: Any) -> BaseException:
    try:
        fn(*args)
    except BaseException as exc:
        return exc
    raise AssertionError("expected an exception")


def _entries(outcome: Outcome) -> list[dict[str, Any]]:
    [event] = outcome.events
    assert event["event"] == "$exception"
    entries: list[dict[str, Any]] = event["properties"]["$exception_list"]
    return entries


def _frames(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return list(entry.get("stacktrace", {}).get("frames", []))


# -------------------------------------------------------------------- single exceptions


def test_caught_exception_from_a_module_function() -> None:
    theirs, ours = assert_same(
        lambda s: s.client.capture_exception(_caught(_raisers.Gateway().refund, 5))
    )
    [entry] = _entries(ours)
    assert entry["type"] == "PaymentError" and entry["module"] == _raisers.__name__
    assert _frames(entry)[-1]["function"] == "refund"
    assert "qualname" not in _frames(theirs.events and _entries(theirs)[0])[-1]


def test_method_frames_have_the_plain_name_and_ours_keep_the_qualified_one() -> None:
    _, ours = assert_same(
        lambda s: s.client.capture_exception(_caught(_raisers.Gateway().charge, 500))
    )
    [entry] = _entries(ours)
    assert entry["type"] == "Gateway.Declined"
    last = _frames(entry)[-1]
    assert (last["function"], last["qualname"]) == ("charge", "Gateway.charge")
    assert last["in_app"] is True  # under project_root (the working directory)


def test_nested_function() -> None:
    _, ours = assert_same(lambda s: s.client.capture_exception(_caught(_raisers.outer_with_helper)))
    last = _frames(_entries(ours)[0])[-1]
    assert (last["function"], last["qualname"]) == ("helper", "outer_with_helper.<locals>.helper")


def test_standard_library_frames_keep_posthog_pythons_filename_and_no_in_app() -> None:
    _, ours = assert_same(lambda s: s.client.capture_exception(_caught(_raisers.parse, "{")))
    [entry] = _entries(ours)
    assert entry["type"] == "JSONDecodeError" and entry["module"] == "json.decoder"
    by_module = {frame["module"]: frame for frame in _frames(entry)}
    assert by_module["json"]["filename"] == "__init__.py"
    assert by_module["json.decoder"]["filename"] == "json/decoder.py"
    assert "in_app" not in by_module["json.decoder"]


def test_site_packages_frames_are_not_in_app() -> None:
    _, ours = assert_same(
        lambda s: s.client.capture_exception(_caught(_raisers.from_site_packages))
    )
    frames = _frames(_entries(ours)[0])
    assert frames[-1]["module"].startswith("requests.") and frames[-1]["in_app"] is False


def test_in_app_modules_with_a_project_root_elsewhere() -> None:
    _, ours = assert_same(
        lambda s: s.client.capture_exception(_caught(_raisers.outer_with_helper)),
        in_app_modules=["tests.parity"],
        project_root="/nonexistent-root",
    )
    frames = _frames(_entries(ours)[0])
    assert [frame.get("in_app") for frame in frames] == [True, True, True]


def test_a_source_line_over_1024_bytes_is_no_context_line() -> None:
    _, ours = assert_same(lambda s: s.client.capture_exception(_caught(_raisers.long_line)))
    last = _frames(_entries(ours)[0])[-1]
    assert last["context_line"] is None and last["pre_context"][-1] == "    value = 1"


def test_os_error_carries_its_errno() -> None:
    _, ours = assert_same(lambda s: s.client.capture_exception(_caught(_raisers.os_error)))
    assert _entries(ours)[0]["mechanism"]["meta"] == {"errno": {"number": 2}}


def test_detail_attribute_is_the_value() -> None:
    def scenario(side: Side) -> Any:
        try:
            raise _raisers.DetailedError("quota exceeded")
        except _raisers.DetailedError as exc:
            return side.client.capture_exception(exc)

    _, ours = assert_same(scenario)
    assert _entries(ours)[0]["value"] == "quota exceeded"


# -------------------------------------------------------------------------------- chains


def test_raise_from_lists_the_cause_chained_after_the_outer_exception() -> None:
    _, ours = assert_same(lambda s: s.client.capture_exception(_caught(_raisers.wrapped_cause)))
    outer, cause = _entries(ours)
    assert outer["mechanism"] == {
        "exception_id": 0,
        "type": "generic",
        "handled": True,
        "synthetic": False,
    }
    assert cause["type"] == "JSONDecodeError"
    assert cause["mechanism"] == {
        "exception_id": 1,
        "parent_id": 0,
        "source": "cause",
        "type": "chained",
        "synthetic": False,
    }


def test_implicit_context() -> None:
    _, ours = assert_same(lambda s: s.client.capture_exception(_caught(_raisers.implicit_context)))
    assert [e["mechanism"].get("source") for e in _entries(ours)] == [None, "context"]


def test_cause_and_context_follow_the_cause() -> None:
    _, ours = assert_same(lambda s: s.client.capture_exception(_caught(_raisers.cause_and_context)))
    assert [e["type"] for e in _entries(ours)] == ["PaymentError", "KeyError", "ValueError"]
    assert [e["mechanism"].get("source") for e in _entries(ours)] == [None, "cause", "context"]


def test_raise_from_none_sends_one_entry() -> None:
    _, ours = assert_same(
        lambda s: s.client.capture_exception(_caught(_raisers.suppressed_context))
    )
    assert len(_entries(ours)) == 1


# -------------------------------------------------------------------------------- groups


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is 3.11+")
def test_nested_exception_group_raised() -> None:
    _, ours = assert_same(lambda s: s.client.capture_exception(_caught(_raisers.nested_group)))
    entries = _entries(ours)
    assert entries[0]["value"] == "batch failed"  # no "(2 sub-exceptions)"
    assert [(e["type"], e["mechanism"].get("parent_id")) for e in entries] == [
        ("ExceptionGroup", None),
        ("ValueError", 0),
        ("ExceptionGroup", 0),
        ("Gateway.Declined", 2),
        ("KeyError", 2),
    ]
    assert {e["mechanism"].get("source") for e in entries[1:]} == {"member"}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is 3.11+")
def test_exception_group_never_raised() -> None:
    def scenario(side: Side) -> Any:
        group = ExceptionGroup("never raised", [ValueError("a"), TypeError("b")])  # noqa: F821
        return side.client.capture_exception(group)

    _, ours = assert_same(scenario)
    first = _entries(ours)[0]
    assert first["mechanism"]["synthetic"] is True and first["mechanism"]["is_exception_group"]


# ------------------------------------------------------------- raised or not, how passed


def test_never_raised_exception_gets_the_calling_stack_marked_synthetic() -> None:
    _, ours = assert_same(lambda s: s.client.capture_exception(_raisers.PaymentError("built")))
    [entry] = _entries(ours)
    assert entry["mechanism"]["synthetic"] is True
    assert _frames(entry)[-1]["function"] == "<lambda>"


def test_exc_info_tuple() -> None:
    def scenario(side: Side) -> Any:
        try:
            _raisers.wrapped_cause()
        except _raisers.PaymentError:
            return side.client.capture_exception(sys.exc_info())

    _, ours = assert_same(scenario)
    assert [e["type"] for e in _entries(ours)] == ["PaymentError", "JSONDecodeError"]


def test_no_argument_inside_except() -> None:
    def scenario(side: Side) -> Any:
        try:
            _raisers.outer_with_helper()
        except KeyError:
            return side.client.capture_exception(None)

    _, ours = assert_same(scenario)
    assert _entries(ours)[0]["type"] == "KeyError"


def test_no_argument_outside_except_sends_nothing() -> None:
    theirs, ours = assert_same(lambda s: s.client.capture_exception(None))
    assert theirs.events == ours.events == [] and ours.result is None


def test_the_same_exception_object_is_sent_once() -> None:
    def scenario(side: Side) -> Any:
        exc = _caught(_raisers.outer_with_helper)
        first = side.client.capture_exception(exc)
        return (first is not None, side.client.capture_exception(exc))

    _, ours = assert_same(scenario)
    assert ours.result == (True, None) and len(ours.events) == 1


# ------------------------------------------------------------------- arguments, contexts


@pytest.mark.filterwarnings("ignore:Reserved exception properties:DeprecationWarning")
def test_properties_distinct_id_groups_timestamp_and_uuid() -> None:
    def scenario(side: Side) -> Any:
        return side.client.capture_exception(
            _caught(_raisers.wrapped_cause),
            distinct_id="user-7",
            properties={"order": 42, "$exception_level": "warning"},
            groups={"company": "acme"},
            timestamp=datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc),
            uuid="0b0e7c8e-27d3-4d4e-9d38-3c1b1f6e7b11",
            disable_geoip=False,
        )

    _, ours = assert_same(scenario, keep=("uuid",))
    [event] = ours.events
    assert event["distinct_id"] == "user-7" and event["uuid"].startswith("0b0e7c8e")
    assert event["properties"]["$groups"] == {"company": "acme"}
    assert event["properties"]["$exception_level"] == "warning"


def test_capture_inside_a_context_uses_its_identity_and_tags() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context(fresh=True, client=side.client):
            side.module.identify_context("ctx-user")
            side.module.set_context_session("sess-1")
            side.module.tag("plan", "pro")
            return side.client.capture_exception(_caught(_raisers.implicit_context))

    _, ours = assert_same(scenario)
    [event] = ours.events
    assert event["distinct_id"] == "ctx-user" and event["properties"]["plan"] == "pro"


def test_exception_leaving_a_context_is_captured_as_handled() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context(fresh=True, client=side.client):
            side.module.identify_context("leaver")
            side.module.tag("step", "checkout")
            _raisers.Gateway().charge(1000)

    theirs, ours = assert_same(scenario, enable_exception_autocapture=True)
    assert theirs.raised is not None and ours.raised is not None
    [entry] = _entries(ours)
    assert entry["mechanism"]["handled"] is True
    assert ours.events[0]["distinct_id"] == "leaver"


def test_context_with_capture_exceptions_false_sends_nothing() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context(capture_exceptions=False, client=side.client):
            raise _raisers.PaymentError("not sent")

    theirs, ours = assert_same(scenario, enable_exception_autocapture=True)
    assert theirs.events == ours.events == []


def test_captured_inside_then_leaving_the_context_is_sent_once() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context(client=side.client):
            exc = _caught(_raisers.wrapped_cause)
            side.client.capture_exception(exc)
            raise exc

    _, ours = assert_same(scenario, enable_exception_autocapture=True)
    assert len(ours.events) == 1


def test_a_payload_that_is_json_serialisable_either_way() -> None:
    def scenario(side: Side) -> Any:
        exc = _caught(_raisers.nested_group)
        return side.client.capture_exception(exc, properties={"raw": json.dumps({"a": 1})})

    assert_same(scenario)
