"""``thingpress teardown --env NAME``: undo every import of an environment, then ready its stack for destroy.

What is undone and emptied is the engine's (:mod:`thingpress_cli.engines.teardown`,
which ``thingpress local destroy`` runs too); this module holds the command: its
arguments, the run, and the command that resumes a stopped teardown.
"""

from __future__ import annotations

import argparse
from typing import Any

from thingpress_cli.engines.rollback_calls import Stopped
from thingpress_cli.engines.teardown import print_report, teardown


def register(subparsers: Any) -> None:
    from thingpress_cli.core.deployment import Deployment

    parser = subparsers.add_parser("teardown", help="undo every import of an environment before its destroy",
                                   description="Undo every import of an environment, then empty its policy, "
                                               "thing type and group so that its stack can be destroyed. "
                                               "Without --yes, only print what would change.")
    parser.add_argument("--yes", action="store_true", help="apply (default: only print what would change)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    Deployment.add_arguments(parser)
    parser.set_defaults(func=cmd_teardown)


def cmd_teardown(args: argparse.Namespace) -> int:
    from thingpress_cli.core.deployment import Deployment, deployment_arguments
    from thingpress_cli.core.errors import ServiceError

    deployment = Deployment.from_args(args)
    try:
        report, sweep = teardown(deployment, apply=args.yes)
    except Stopped as stop:
        resume = ["thingpress", "teardown"] + (["--yes"] if args.yes else []) + deployment_arguments(args, deployment)
        raise ServiceError(stop.message(resume)) from stop
    print_report(report, sweep, args.json, deployment.outputs.environment)
    return 0
