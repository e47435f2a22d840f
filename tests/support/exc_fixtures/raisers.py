"""Functions that raise, for tests/unit/errors/test_exceptions.py.

Tests find line numbers through the ``# MARK: name`` comments, so lines may move freely.
"""

from __future__ import annotations

import builtins
from typing import Any

from posthog_otel.errors import exception_list


class PaymentError(Exception):
    """An application exception defined outside builtins."""


class Outer:
    class InnerError(Exception):
        """A nested exception class: its qualified name has a dot."""


def fail_plain(message: str = "boom") -> None:
    raise ValueError(message)  # MARK: plain


def call_plain() -> None:
    fail_plain()  # MARK: call_plain


def fail_with_cause() -> None:
    try:
        fail_plain("root")  # MARK: cause_call
    except ValueError as exc:
        raise PaymentError("declined") from exc  # MARK: from


def fail_during_handling() -> None:
    try:
        {}["missing"]  # MARK: keyerror
    except KeyError:
        raise RuntimeError("while handling")  # noqa: B904  # MARK: context


def fail_from_none() -> None:
    try:
        fail_plain()
    except ValueError:
        raise PaymentError("context hidden") from None


def fail_from_unraised() -> None:
    raise PaymentError("outer") from KeyError("never raised")


class Service:
    def handle(self) -> None:
        def step() -> None:
            raise Outer.InnerError("nested")  # MARK: method

        step()


def call_via_lambda() -> None:
    (lambda: fail_plain("from a lambda"))()


def recurse(depth: int) -> int:
    return recurse(depth + 1)


def fail_group() -> None:
    group: Any = builtins.ExceptionGroup  # only called on Python 3.11+
    members: list[Exception] = []
    for fn in (fail_plain, fail_with_cause):
        try:
            fn()
        except Exception as exc:
            members.append(exc)
    try:
        raise group("inner", [KeyError("k")])
    except Exception as exc:
        members.append(exc)
    raise group("several", members)  # MARK: group


def report(exc: BaseException) -> list[dict[str, Any]]:
    return exception_list(exc)  # MARK: report
