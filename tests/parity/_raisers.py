"""Code that raises, for the exception parity scenarios (line positions matter to them)."""

from __future__ import annotations

import builtins
import json
from typing import Any

import requests

_GROUP: Any = getattr(builtins, "ExceptionGroup", None)  # the group scenarios need 3.11+


class PaymentError(Exception):
    """An application error defined at module level."""


class Gateway:
    """Raises from methods."""

    class Declined(Exception):
        """A nested exception class: its type is the qualified name ``Gateway.Declined``."""

    def charge(self, amount: int) -> None:
        if amount > 100:
            raise Gateway.Declined(f"card declined for {amount}")

    @classmethod
    def refund(cls, amount: int) -> None:
        raise PaymentError(f"refund of {amount} failed")


def outer_with_helper() -> None:
    def helper() -> None:
        raise KeyError("sku")

    helper()


def parse(text: str) -> Any:
    return json.loads(text)


def wrapped_cause() -> None:
    try:
        parse("{")
    except ValueError as exc:
        raise PaymentError("bad payload") from exc


def implicit_context() -> None:
    try:
        {}["missing"]
    except KeyError:
        raise PaymentError("while handling")  # noqa: B904


def cause_and_context() -> None:
    try:
        int("x")
    except ValueError:
        try:
            {}["k"]
        except KeyError as inner:
            raise PaymentError("both") from inner


def suppressed_context() -> None:
    try:
        int("x")
    except ValueError:
        raise PaymentError("from none") from None


def nested_group() -> None:
    try:
        Gateway().charge(500)
    except Gateway.Declined as declined:
        inner = _GROUP("inner", [declined, KeyError("k")])
    raise _GROUP("batch failed", [ValueError("first"), inner])


def long_line() -> None:
    value = 1
    raise PaymentError("long line") if value else "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"  # fmt: skip


def from_site_packages() -> None:
    requests.Request("GET", "not a url").prepare()


def os_error() -> None:
    with open("/nonexistent/posthog-otel-parity.txt"):
        pass


class DetailedError(Exception):
    """An error whose ``detail`` attribute is its message (as in some web frameworks)."""

    def __init__(self, detail: str) -> None:
        super().__init__("generic text")
        self.detail = detail
