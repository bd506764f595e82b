"""``thingpress upload FILE [--wait]``: put a manifest where its vendor's provider picks it up.

Works against any deployment given its ``terraform-outputs.json`` and environment
suffix (``--outputs``/``--env``, or ``THINGPRESS_OUTPUTS`` / ``THINGPRESS_ENV``),
reading names only through the outputs contract. ``--wait`` shows progress until
the manifest is complete, then its summary (:mod:`thingpress_cli.core.summaries`).

Before the upload, the quota check (:mod:`thingpress_cli.core.quotas`): the importer's
IoT budget against the account's quotas, a warning on stderr for a budget above a quota;
the output gives the import's pace at the lower of the two (certificates per second) and
the ETA of the certificates already queued ahead of this manifest (``plan`` gives the
manifest's own ETA: it counts the file's certificates). ``--json`` carries the check
(``quotas``, ``certificates_per_second``, ``backlog``, ``backlog_eta_seconds``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from thingpress.audit.states import COMPLETE
from thingpress_cli.commands.plan import format_duration
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.quotas import deployment_quota_check
from thingpress_cli.core.streams import warn
from thingpress_cli.core.summaries import print_summary_table, summary_view, wait_for
from thingpress_cli.engines.plan import eta_seconds, seconds_per_certificate


def pace(deployment: Deployment) -> dict[str, Any]:
    """The quota check (its warnings on stderr) and the import's pace and backlog ahead, for the output."""
    settings = deployment.importer_settings()
    check = deployment_quota_check(deployment, settings)
    for line in check.warnings():
        warn(line)
    backlog = deployment.import_backlog()
    return {**check.as_dict(), "certificates_per_second": round(1 / seconds_per_certificate(settings, check.rates()), 2),
            "backlog": backlog, "backlog_eta_seconds": eta_seconds(0, backlog, settings, check.rates())}


def cmd_upload(args: argparse.Namespace) -> int:
    deployment = Deployment.from_args(args)
    path = Path(args.file)
    check = pace(deployment)
    uploaded = deployment.upload(path, vendor=args.vendor)
    if not args.wait:
        result = {"manifest": uploaded.manifest_id, "vendor": uploaded.vendor, "key": uploaded.key,
                  "version_id": uploaded.version_id, **check}
        print(json.dumps(result) if args.json else f"uploaded {path} as s3://{uploaded.bucket}/{uploaded.key} "
              f"(manifest {uploaded.manifest_id}); follow it with: thingpress status {uploaded.manifest_id}\n"
              + pace_line(check))
        return 0
    if not args.json:
        print(pace_line(check), flush=True)
    row = wait_for(deployment, uploaded.manifest_id, timeout=args.timeout, show_progress=not args.json)
    view = summary_view(row)
    if args.json:
        print(json.dumps({**view, **check}, sort_keys=True))
    else:
        print_summary_table([view])
    return 0 if row.get("state") == COMPLETE else 1


def pace_line(check: dict[str, Any]) -> str:
    """The pace at the lower of budget and quotas, and the queue ahead (fits 80 columns)."""
    return (f"pace: {check['certificates_per_second']:g} certificates/s (budget or quota, the lower); "
            f"{check['backlog']} queued ahead ({format_duration(check['backlog_eta_seconds'])})")


def register(sub: argparse._SubParsersAction) -> None:
    upload = sub.add_parser("upload", help="put a manifest where its vendor's provider picks it up",
                            description="Upload FILE under its vendor's prefix of the deployment's bucket, where "
                                        "the vendor's provider picks it up; print its manifest id (or, with "
                                        "--wait, follow it to the end and print its summary). First the quota "
                                        "check: the importer's IoT budget against the account's quotas (a budget "
                                        "above a quota is a warning on stderr) and the import's pace at the lower "
                                        "of the two.")
    upload.add_argument("file", metavar="FILE", help="the manifest file (vendor from its suffix, or --vendor)")
    upload.add_argument("--vendor", choices=("microchip", "infineon", "espressif", "generated"),
                        help="vendor format (default: from the file suffix)")
    upload.add_argument("--wait", action="store_true", help="show progress until the manifest is complete")
    upload.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait (default 1800)")
    Deployment.add_arguments(upload)
    upload.add_argument("--json", action="store_true", help="print one JSON document")
    upload.set_defaults(func=cmd_upload)
