"""``posthog-otel COMMAND --help`` shows the default of every option that has one."""

from __future__ import annotations

import argparse
import re

from posthog_otel import cli


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli._parser()
    (group,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(group.choices)


def test_every_option_with_a_default_shows_it() -> None:
    commands = _subparsers()
    assert set(commands) == {"sink", "demo", "bridge"}
    for name, parser in commands.items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or action.default in (None, False, [], argparse.SUPPRESS):
                continue
            shown = formatter._expand_help(action)
            option = action.option_strings[-1]
            assert "default" in shown, f"{name} {option}: no default in --help"
            assert re.sub(r"\.0$", "", str(action.default)) in shown, f"{name} {option}: {shown}"


def test_defaults_shown_for_the_options_the_issue_names() -> None:
    bridge = " ".join(_subparsers()["bridge"].format_help().split())
    assert "--key-from-request (default: 16)" in bridge
    assert "span/log record (default: 128)" in bridge
