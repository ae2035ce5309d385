"""Every option of every ``inbedder`` command says what it does and shows its default in
``--help`` (issue 37, item 5: ``train --help`` had no help for ``--model``, ``--lora-r``,
``--epochs`` or ``--lr``, and ``eval --help`` showed no defaults)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from inbedder_integrations.cli import build_parser

#: Commands left out of the checks (none: every command's options are checked).
NOT_HERE: set[str] = set()


def commands(
    parser: argparse.ArgumentParser, name: str = "inbedder"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command's parser, ``data build`` included, with its full name."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                yield from commands(subparser, f"{name} {sub}")


def arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    skip = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
    return [action for action in parser._actions if not isinstance(action, skip)]


def test_every_option_has_help_text():
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, parser in commands(build_parser())
        if name not in NOT_HERE
        for action in arguments(parser)
        if not (action.help or "").strip()
    ]
    assert missing == []


def test_every_default_is_shown():
    """An option whose default is a value (not None, "not given"; not a flag's False) shows it."""
    hidden = []
    for name, parser in commands(build_parser()):
        if name in NOT_HERE:
            continue
        formatter = parser._get_formatter()
        for action in arguments(parser):
            default = action.default
            if default is None or default is False or default is argparse.SUPPRESS or default == []:
                continue
            shown = formatter._expand_help(action)
            if "default" not in shown.lower() or str(default).strip("./") not in shown:
                hidden.append(f"{name} {'/'.join(action.option_strings)}: {shown!r}")
    assert hidden == []


def test_train_help_shows_what_the_issue_missed(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per option: no word cut at a hyphen
    parser = dict(commands(build_parser()))["inbedder train"]
    text = " ".join(parser.format_help().split())
    for expected in ("LoRA rank (default: 16)", "(default: 1.0)", "peak learning rate", "(default: 0.0002)"):
        assert expected in text
    evaluate = " ".join(dict(commands(build_parser()))["inbedder eval"].format_help().split())
    assert "(default: 30)" in evaluate and "(default: eval-report)" in evaluate
