"""``thingpress deactivate --file LIST --status INACTIVE|REVOKED``: devices that failed test, were scrapped
or returned lose their certificates' ACTIVE status, with an audit trail.

The list holds thing names, certificate ids or vendor device ids, resolved through the audit table
(``thingpress.lifecycle.resolve``); an entry naming nothing is reported, never guessed. The job runs
as the pipeline does; the reading, dry run, submission and watch are the engine's
(:mod:`thingpress_cli.engines.lifecycle`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from thingpress.lifecycle.jobs import DEACTIVATE_STATUSES, REVOKED, REVOKED_IS_FINAL

#: the reason recorded unless given one.
REASON = "deactivated by operator"


def register(subparsers: Any) -> None:
    from thingpress_cli.core.deployment import Deployment

    parser = subparsers.add_parser(
        "deactivate", help="make certificates INACTIVE or REVOKED from a list (dry run unless --yes)",
        description="Set the certificates of the devices in a list (thing names, certificate ids or vendor "
                    "device ids, one a line: Microchip uniqueId, Infineon chip id, Espressif MAC) to INACTIVE "
                    "or REVOKED, each resolved through the audit table; an entry that names nothing is "
                    f"reported, never guessed. {REVOKED_IS_FINAL}. Without --yes, only print what would "
                    "change; with it, the job runs on the deployment (one message per batch) and this command "
                    "waits for it. The same command again resumes it.")
    parser.add_argument("--file", metavar="LIST", type=Path, required=True,
                        help="one thing name, certificate id or device id a line")
    parser.add_argument("--status", required=True, choices=DEACTIVATE_STATUSES,
                        help="INACTIVE (can be activated again) or REVOKED (final)")
    parser.add_argument("--reason", default=REASON,
                        help=f"recorded on every row, e.g. 'failed test' or 'RMA' (default: {REASON!r})")
    parser.add_argument("--yes", action="store_true", help="apply (default: only print what would change)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the job (default 1800)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    Deployment.add_arguments(parser)
    parser.set_defaults(func=cmd_deactivate)


def cmd_deactivate(args: argparse.Namespace) -> int:
    from thingpress.lifecycle.jobs import DEACTIVATE, Request
    from thingpress_cli.core.deployment import Deployment
    from thingpress_cli.engines import lifecycle

    listed = lifecycle.read_list(args.file)
    deployment = Deployment.from_args(args)
    entries = lifecycle.file_entries(listed, {})
    request = Request(DEACTIVATE, args.status, args.reason, lifecycle.caller(deployment))
    note = (f"note: {REVOKED_IS_FINAL}." + ("" if args.yes else " Run again with --yes to revoke.")
            if args.status == REVOKED else None)
    return lifecycle.run(deployment, request, entries, apply=args.yes, as_json=args.json, timeout=args.timeout,
                         note=note)
