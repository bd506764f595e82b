"""``thingpress``: the operator command.

Each subcommand lives in its own module of :mod:`thingpress_cli.commands` with a
``register(subparsers)`` function that adds its parser and sets ``func`` (called
with the parsed arguments, returns the exit status). Modules are imported only
when their command runs, so that ``thingpress inspect`` never pays for boto3 or
the emulator. ``thingpress --help`` lists the commands under :data:`GROUPS`, the global options
(before the command) and the exit statuses; whatever a command raises ends in one
place, :func:`thingpress_cli.core.errors.report` (the status and one message).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import sys

from thingpress_cli.core import errors

#: heading -> the commands listed under it (each a module of thingpress_cli.commands), by when in
#: an import's life the operator uses them; this order is also the order the parser knows them in.
GROUPS: dict[str, tuple[str, ...]] = {
    "before an import": ("generate", "inspect", "plan"),
    "during an import": ("upload", "status"),
    "after an import": ("report", "activate", "deactivate", "reconcile", "redrive", "rollback", "teardown"),
    "on the local cloud": ("local", "demo"),
    "in the shell": ("completion",),
}
COMMANDS = tuple(command for commands in GROUPS.values() for command in commands)
#: the global options that take a value (what follows them is not the command).
VALUED = ("--profile", "--region")
EPILOG = "exit status:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in errors.EXIT_STATUSES) + (
    "\n\nAWS credentials and region: AWS_PROFILE, AWS_REGION (or --profile, --region)."
    "\nthingpress COMMAND --help describes a command; its --json makes its output"
    "\n(and its errors) one JSON document on stdout.")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors reach the one handler (so ``--json`` gets them as JSON too)."""

    def error(self, message: str):  # type: ignore[override]
        raise errors.UsageError(message, usage=self.format_usage())


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = Parser(prog="thingpress", description="Bulk import of AWS IoT device certificates.", epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {importlib.metadata.version('thingpress')}")
    parser.add_argument("--debug", action="store_true", help="on an error, print its traceback too")
    parser.add_argument("--profile", metavar="NAME", help="AWS profile for this run (default: $AWS_PROFILE)")
    parser.add_argument("--region", metavar="REGION",
                        help="AWS region for this run (default: $AWS_REGION, else the deployment's own)")
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


def command_of(argv: list[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not a global option or its value)."""
    words = iter(argv)
    for word in words:
        if word in VALUED:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = command_of(argv)
    args = argparse.Namespace()
    try:
        parser = build_parser(first if first in COMMANDS else None)
        args = parser.parse_args(argv)
        # As the standard variables: every boto3 session of this run (the deployment's) sees them.
        for option, variable in (("profile", "AWS_PROFILE"), ("region", "AWS_REGION")):
            if getattr(args, option):
                os.environ[variable] = getattr(args, option)
        return int(args.func(args) or 0)
    except (Exception, KeyboardInterrupt) as error:  # errors.report re-raises what is not the operator's
        as_json = bool(getattr(args, "json", False) or getattr(args, "format", None) == "json"
                       or (not vars(args) and "--json" in argv))
        return errors.report(error, command=first if first in COMMANDS else None, as_json=as_json,
                             debug=getattr(args, "debug", "--debug" in argv))


if __name__ == "__main__":
    raise SystemExit(main())
