"""README.md's blocks are each runnable by tests/integration/test_readme.py or say why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.readme_blocks import readme_blocks

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_readme_block_is_runnable_or_says_why_not() -> None:
    blocks = readme_blocks(README.read_text())
    commands = [b for b in blocks if b.kind is not None]
    assert commands
    unknown = [b.label() for b in commands if b.kind == "unknown" and "not-run" not in b.markers]
    assert unknown == []
    run = [b for b in commands if "not-run" not in b.markers and "file" not in b.markers]
    assert any(b.expected() for b in run)


def test_markers_are_read_from_the_lines_above_a_fence() -> None:
    text = (
        "Intro.\n\n<!-- not-run: needs an account -->\n```sh\nposthog login\n```\n\n"
        "<!-- background: http://127.0.0.1:5000/ -->\n<!-- expect: a@u-1, b -->\n\n"
        "```bash\npython app.py\n```\n\nText between.\n```ruby\nputs 1\n```\n"
        "```yaml\nkey: value\n```\n"
    )
    first, second, third, fourth = readme_blocks(text)
    assert first.markers == {"not-run": "needs an account"} and first.kind == "sh"
    assert second.markers["background"] == "http://127.0.0.1:5000/"
    assert second.expected() == [("a", "u-1"), ("b", None)]
    assert second.code == "python app.py\n" and second.line == 11
    assert third.kind == "unknown" and third.markers == {}
    assert fourth.kind is None


def test_a_marker_without_a_reason_or_of_an_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="needs a value"):
        readme_blocks("<!-- not-run: -->\n```sh\nx\n```\n")
    with pytest.raises(ValueError, match="unknown marker"):
        readme_blocks("<!-- skip: yes -->\n```sh\nx\n```\n")
