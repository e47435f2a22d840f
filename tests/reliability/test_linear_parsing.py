"""Stack-trace text from outside is parsed in time linear in its size.

Adversarial families (long runs of the tokens each parser's patterns look for, lines with no
end, thousands of frames) and random token soups from Hypothesis: each parse must take at most
``PER_BYTE`` seconds per byte plus a small constant. A parser that backtracks quadratically
takes seconds to minutes on these inputs (Java's type header took 6 s on 40 KB).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posthog_otel.errors import exception_list_from_stacktrace

PER_BYTE = 5e-6  # 5 µs per byte: linear parsers here run at well under 0.5 µs per byte
CONSTANT = 0.05
SIZE = 256 * 1024  # the most stack text that is read

FAMILIES: dict[str, Callable[[int], str]] = {
    "node_function_parens": lambda n: "Error: x\n    at " + "x (" * (n // 3),
    "node_parens_closed": lambda n: "Error: x\n    at " + "x (" * (n // 3) + ")",
    "node_location_colons": lambda n: "Error: x\n    at f (" + "a:1" * (n // 3) + ")",
    "node_many_frames": lambda n: "Error: x\n" + "    at f (a.js:1:1)\n" * (n // 20),
    "java_dotted_frame": lambda n: "java.lang.X: y\n\tat " + "a." * (n // 2) + "(",
    "java_slashed_frame": lambda n: "java.lang.X: y\n\tat " + "a/" * (n // 2) + "b(",
    "java_dotted_type": lambda n: "a" + ".a" * (n // 2) + ":",
    "java_caused_by_types": lambda n: (
        ("Caused by: " + "a." * 2000 + "\n") * (n // 4000) + "\tat a.b(C.java:1)"
    ),
    "go_file_runs": lambda n: (
        "panic: x\n\ngoroutine 1 [running]:\nmain.f()\n\t" + "a.go:1 " * (n // 7)
    ),
    "go_argument_parens": lambda n: (
        "panic: x\n\ngoroutine 1 [running]:\nmain.f" + "(" * n + "\n\tmain.go:1"
    ),
    "python_file_lines": lambda n: (
        'Traceback (most recent call last):\n  File "' + '", line 1, in ' * (n // 14)
    ),
    "python_exception_spaces": lambda n: (
        "Traceback (most recent call last):\nValueError: " + " " * n + "x"
    ),
    "python_group_margins": lambda n: "  | " * (n // 4),
    "whitespace_only": lambda n: "\t" * (n // 2) + "\n  at " + "\t" * (n // 2),
}


def _seconds(text: str) -> float:
    started = time.perf_counter()
    exception_list_from_stacktrace(text)
    return time.perf_counter() - started


@pytest.mark.parametrize("family", list(FAMILIES))
def test_adversarial_families_parse_in_linear_time(family: str) -> None:
    text = FAMILIES[family](SIZE - 4096)  # under the 256 KiB clip: read in full
    elapsed = _seconds(text)
    assert elapsed <= PER_BYTE * len(text) + CONSTANT, (family, len(text), elapsed)


TOKENS = [
    "at ",
    " (",
    "(",
    ")",
    ":",
    "1",
    ".",
    "/",
    "a",
    " ",
    "\t",
    "\n",
    'File "',
    '", line ',
    ", in ",
    "Caused by: ",
    "Traceback (most recent call last):\n",
    "panic: ",
    ".go:",
    " +0x",
    "goroutine 1 [",
    "Error: ",
    "  | ",
    "+-",
    "-" * 16,
    "async ",
    "$",
    '"',
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12),
    repeat=st.integers(min_value=1, max_value=4000),
)
def test_token_soups_parse_in_linear_time(parts: list[str], repeat: int) -> None:
    text = "".join(parts) * repeat
    elapsed = _seconds(text)
    assert elapsed <= PER_BYTE * len(text) + CONSTANT, (parts, repeat, elapsed)
