"""The fenced code blocks of README.md and the markers that say how a test runs them.

A marker is an HTML comment on the line(s) just above a block's opening fence (a blank line
between them is allowed, text is not):

- ``<!-- not-run: REASON -->``: not run; a reason is required.
- ``<!-- file: PATH -->``: not run; written to PATH in the work folder for later blocks.
- ``<!-- background: URL -->``: started and left running (until the end of the run) once
  URL answers.
- ``<!-- expect: NAME[@DISTINCT_ID], ... -->``: after the block, these events arrive (``log``:
  a log record at the OTLP logs endpoint).
- ``<!-- app-errors: TEXT -->``: tracebacks whose exception line contains TEXT are the app's
  own (a demo route that raises), not a failure.

Blocks in ``sh``/``bash``/``shell`` and ``python`` are commands; ``yaml``/``toml``/``json``/
``text``/``ini`` blocks are data and never run. Any other block is an error: say how to run it.

    blocks = readme_blocks(Path("README.md").read_text())
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["COMMAND_LANGUAGES", "DATA_LANGUAGES", "Block", "readme_blocks"]

COMMAND_LANGUAGES = {"sh": "sh", "bash": "sh", "shell": "sh", "python": "python", "py": "python"}
DATA_LANGUAGES = frozenset({"yaml", "yml", "toml", "json", "text", "ini", "txt"})

_FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*([a-z-]+)\s*:\s*(.*?)\s*-->\s*$")
_KNOWN = frozenset({"not-run", "file", "background", "expect", "app-errors"})


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    markers: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str | None:
        """``sh`` or ``python`` for command blocks, None for data blocks."""
        if self.language in DATA_LANGUAGES:
            return None
        return COMMAND_LANGUAGES.get(self.language, "unknown")

    def label(self) -> str:
        first = next((ln.strip() for ln in self.code.splitlines() if ln.strip()), "")
        return f"README.md:{self.line} ({self.language}) {first[:60]}"

    def expected(self) -> list[tuple[str, str | None]]:
        """(event name, distinct id or None) pairs from the ``expect`` marker."""
        pairs = []
        for item in self.markers.get("expect", "").split(","):
            if item.strip():
                name, _, distinct_id = item.strip().partition("@")
                pairs.append((name.strip(), distinct_id.strip() or None))
        return pairs


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block, with the markers above it. ValueError for a malformed marker."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, language = opening.group(1), opening.group(2).lower()
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[index + 1 : end]]
        blocks.append(Block(index + 1, language, "\n".join(body) + "\n", _markers(lines, index)))
        index = end + 1
    return blocks


def _markers(lines: list[str], fence: int) -> dict[str, str]:
    found: dict[str, str] = {}
    above = fence - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    while above >= 0 and (match := _MARKER.match(lines[above])):
        name, value = match.group(1), match.group(2)
        if name not in _KNOWN:
            raise ValueError(f"README.md:{above + 1}: unknown marker {name!r}")
        if not value:
            raise ValueError(f"README.md:{above + 1}: marker {name!r} needs a value")
        found[name] = value
        above -= 1
    return found
