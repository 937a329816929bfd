"""Every option of every `patronage` verb of ours says what it does (`patronage VERB --help`)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest
from django.core.management import get_commands, load_command_class


def our_commands() -> list[tuple[str, str]]:
    return sorted((name, app) for name, app in get_commands().items() if app.startswith("patronage."))


def parsers(parser: argparse.ArgumentParser, prog: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """The parser and every subcommand's parser under it, each with the words that reach it."""
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, f"{prog} {name}")


def test_our_verbs_are_found() -> None:
    names = {name for name, _ in our_commands()}
    ours = {"apikey", "application", "bootstrap", "demo", "export", "import", "mailing", "run", "serve"}
    assert ours | {"worker"} <= names


@pytest.mark.parametrize(("name", "app"), our_commands())
def test_every_option_of_every_verb_has_a_help_text(name: str, app: str) -> None:
    command = load_command_class(app, name)
    missing = []
    for prog, parser in parsers(command.create_parser("patronage", name), name):
        assert parser.format_help()  # renders, e.g. no stray % in a help text
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == [], f"options without a help text: {missing}"
