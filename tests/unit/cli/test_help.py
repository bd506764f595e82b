"""``thingpress --help``: every command listed once, under the heading of when in an import's life it is used."""

from __future__ import annotations

import argparse
import pkgutil
import re

import pytest

from thingpress_cli import commands
from thingpress_cli.main import COMMANDS, GROUPS, build_parser, main


def test_every_command_module_is_listed_once():
    modules = {m.name for m in pkgutil.iter_modules(commands.__path__)}
    assert sorted(COMMANDS) == sorted(modules) and len(COMMANDS) == len(set(COMMANDS))


def test_help_lists_the_commands_under_their_headings_before_the_options(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: thingpress [-h] [--version] [--debug] [--profile NAME]")
    headings = [f"\n{heading}:\n" for heading in GROUPS] + ["\noptions:\n"]
    assert [out.index(h) for h in headings] == sorted(out.index(h) for h in headings)
    for (heading, names), end in zip(GROUPS.items(), headings[1:]):
        section = out[out.index(f"\n{heading}:\n"):out.index(end)]
        assert [line.split()[0] for line in section.splitlines()[2:] if line.startswith("  ") and
                not line.startswith("   ")] == list(names), heading
    assert "positional arguments" not in out


def test_a_command_alone_imports_only_its_module():
    parser = build_parser("inspect")
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    assert list(sub.choices) == ["inspect"]


def _leaf_parsers(parser, path=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    yield path, parser
    for sub in subs:
        for name, child in sub.choices.items():
            yield from _leaf_parsers(child, path + (name,))


def test_every_command_has_a_description_and_every_option_its_help_in_plain_text():
    problems = []
    for path, parser in _leaf_parsers(build_parser()):
        name = " ".join(("thingpress",) + path)
        texts = [parser.description or ""]
        if not parser.description:
            problems.append(f"{name}: no description")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                texts += [choice.help or "" for choice in action._choices_actions]
                continue
            if not action.help:
                problems.append(f"{name} {'/'.join(action.option_strings) or action.dest}: no help")
            texts.append(action.help or "")
        problems += [f"{name}: markup in {text!r}" for text in texts if re.search(r"``|:(func|mod|class|data):", text)]
    assert problems == []
