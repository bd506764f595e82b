"""``thingpress status [MANIFEST] [--watch]``: manifest summaries from the audit table.

One manifest (its id or a unique prefix) or all of them, as a table
(:mod:`thingpress_cli.core.summaries`) or ``--json``; ``--watch`` shows progress
until the manifest (default: every unfinished one) is complete.
"""

from __future__ import annotations

import argparse
import json

from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.summaries import print_summary_table, summary_view, wait_all


def cmd_status(args: argparse.Namespace) -> int:
    deployment = Deployment.from_args(args)
    table = deployment.audit_table()
    if args.manifest:
        mids = [deployment.resolve_manifest(args.manifest)]
    elif args.watch:
        mids = [r["manifest_id"] for r in table.unfinished_manifests()]  # the by_state index: no scan
    else:
        mids = []
    if args.watch and mids:
        wait_all(deployment, mids, timeout=args.timeout, show_progress=not args.json)
    rows = [table.get_summary(mid) or {} for mid in mids] if args.manifest else deployment.manifest_summaries()
    views = [summary_view(r) for r in rows]
    if args.json:
        print(json.dumps(views[0] if args.manifest else views, sort_keys=True))
    else:
        print_summary_table(views)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser("status", help="manifest summaries from the audit table",
                            description="Every manifest (or one) with its state and counts, from the audit "
                                        "table; --watch follows unfinished manifests until they end.")
    status.add_argument("manifest", nargs="?", help="manifest id or a unique prefix of it (default: all)")
    status.add_argument("--watch", action="store_true",
                        help="show progress until the manifest (default: every unfinished one) is complete")
    status.add_argument("--timeout", type=float, default=1800.0, help="seconds to watch (default 1800)")
    Deployment.add_arguments(status)
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.set_defaults(func=cmd_status)
