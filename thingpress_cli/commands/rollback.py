"""Undo imports: ``thingpress rollback MANIFEST`` (one manifest) and the engine ``teardown`` uses.

What is undone, in which order, and how a stopped rollback resumes is the
engine's (:mod:`thingpress_cli.engines.rollback`, with its IoT calls in
:mod:`~thingpress_cli.engines.rollback_calls`); this module holds the
command: its arguments, the run, what it prints and the command that resumes it.
"""

from __future__ import annotations

import argparse
from typing import Any

from thingpress_cli.engines.rollback import run
from thingpress_cli.engines.rollback_calls import Stopped
from thingpress_cli.engines.rollback_report import print_report

#: the reason ``thingpress rollback`` records unless given one.
REASON = "operator rollback"


def register(subparsers: Any) -> None:
    from thingpress_cli.core.deployment import Deployment

    parser = subparsers.add_parser("rollback", help="undo one manifest's import (dry run unless --yes)",
                                   description="Undo one manifest's import: deactivate and detach (or, with "
                                               "--delete, delete) the certificates and things it created. "
                                               "Without --yes, only print what would change.")
    parser.add_argument("manifest", metavar="MANIFEST",
                        help="manifest id or a unique prefix of it, e.g. the short id thingpress status prints")
    parser.add_argument("--yes", action="store_true", help="apply (default: only print what would change)")
    parser.add_argument("--delete", action="store_true",
                        help="delete certificates and things instead of deactivating and detaching")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--reason", default=REASON, help="recorded on every rolled-back row")
    Deployment.add_arguments(parser)
    parser.set_defaults(func=cmd_rollback)


def cmd_rollback(args: argparse.Namespace) -> int:
    from thingpress_cli.core.deployment import Deployment, deployment_arguments
    from thingpress_cli.core.errors import ServiceError

    deployment = Deployment.from_args(args)
    mid = deployment.resolve_manifest(args.manifest)
    try:
        report = run(deployment, mid, delete=args.delete, apply=args.yes, reason=args.reason)
    except Stopped as stop:
        resume = (["thingpress", "rollback", mid] + (["--delete"] if args.delete else [])
                  + (["--yes"] if args.yes else []) + deployment_arguments(args, deployment)
                  + (["--reason", args.reason] if args.reason != REASON else []))
        raise ServiceError(stop.message(resume)) from stop
    print_report(report, args.json, f"rollback {mid}")
    return 0
