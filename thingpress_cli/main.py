"""``thingpress``: the operator command.

Each subcommand lives in its own module of :mod:`thingpress_cli.commands` with a
``register(subparsers)`` function that adds its parser and sets ``func`` (called
with the parsed arguments, returns the exit status). Modules are imported only
when their command runs, so that ``thingpress inspect`` never pays for boto3 or
the emulator. ``thingpress --help`` lists the commands under :data:`GROUPS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: heading -> the commands listed under it (each a module of thingpress_cli.commands), by when in
#: an import's life the operator uses them; this order is also the order the parser knows them in.
GROUPS: dict[str, tuple[str, ...]] = {
    "before an import": ("generate", "inspect", "plan"),
    "during an import": ("upload", "status"),
    "after an import": ("report", "reconcile", "redrive", "rollback", "teardown"),
    "on the local cloud": ("local", "demo"),
}
COMMANDS = tuple(command for commands in GROUPS.values() for command in commands)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thingpress", description="Bulk import of AWS IoT device certificates.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        if only is None or command == only:
            importlib.import_module(f"thingpress_cli.commands.{command}").register(sub)
    if only is None:
        group_commands(parser, sub)
    return parser


def group_commands(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction) -> None:
    """Show the commands in the help under :data:`GROUPS`' headings, before the options.

    argparse prints a section per argument group, and a subparsers action lists its
    commands as one block under "positional arguments": each heading becomes an
    argument group holding its commands' help lines (the subparsers action's
    ``_ChoicesPseudoAction`` entries, which argparse formats as it would there), and
    the subparsers action leaves the positional section (it stays in the usage line).
    """
    listed = {choice.dest: choice for choice in sub._choices_actions}
    parser._positionals._group_actions.remove(sub)
    for heading, commands in GROUPS.items():
        parser.add_argument_group(heading)._group_actions.extend(listed[command] for command in commands)
    parser._action_groups.remove(parser._optionals)
    parser._action_groups.append(parser._optionals)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in COMMANDS else None)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
