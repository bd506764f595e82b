"""``thingpress``: the operator command.

Each subcommand lives in its own module with a ``register(subparsers)`` function
that adds its parser and sets ``func`` (called with the parsed arguments, returns
the exit status). Modules are imported only when their command runs, so that
``thingpress inspect`` never pays for boto3 or the emulator.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> module (under thingpress_cli) that registers it.
COMMANDS = {
    "inspect": "inspect",
    "plan": "plan",
    "reconcile": "reconcile",
    "redrive": "redrive",
    "generate": "generate",
    "upload": "operate",
    "status": "operate",
    "report": "operate",
    "rollback": "rollback",
    "teardown": "teardown",
    "local": "local.commands",
    "demo": "demo",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thingpress", description="Bulk import of AWS IoT device certificates.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    seen: set[str] = set()
    for command, module in COMMANDS.items():
        if only is not None and command != only:
            continue
        if module in seen:
            continue
        seen.add(module)
        importlib.import_module(f"thingpress_cli.{module}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in COMMANDS else None)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
