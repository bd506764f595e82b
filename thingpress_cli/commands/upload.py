"""``thingpress upload FILE [--wait]``: put a manifest where its vendor's provider picks it up.

Works against any deployment given its ``terraform-outputs.json`` and environment
suffix (``--outputs``/``--env``, or ``THINGPRESS_OUTPUTS`` / ``THINGPRESS_ENV``),
reading names only through the outputs contract. ``--wait`` shows progress until
the manifest is complete, then its summary (:mod:`thingpress_cli.core.summaries`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from thingpress.audit.states import COMPLETE
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.summaries import print_summary_table, summary_view, wait_for


def cmd_upload(args: argparse.Namespace) -> int:
    deployment = Deployment.from_args(args)
    path = Path(args.file)
    uploaded = deployment.upload(path, vendor=args.vendor)
    if not args.wait:
        result = {"manifest": uploaded.manifest_id, "vendor": uploaded.vendor, "key": uploaded.key,
                  "version_id": uploaded.version_id}
        print(json.dumps(result) if args.json else f"uploaded {path} as s3://{uploaded.bucket}/{uploaded.key} "
              f"(manifest {uploaded.manifest_id}); follow it with: thingpress status {uploaded.manifest_id}")
        return 0
    row = wait_for(deployment, uploaded.manifest_id, timeout=args.timeout, show_progress=not args.json)
    view = summary_view(row)
    if args.json:
        print(json.dumps(view, sort_keys=True))
    else:
        print_summary_table([view])
    return 0 if row.get("state") == COMPLETE else 1


def register(sub: argparse._SubParsersAction) -> None:
    upload = sub.add_parser("upload", help="put a manifest where its vendor's provider picks it up",
                            description="Upload FILE under its vendor's prefix of the deployment's bucket, where "
                                        "the vendor's provider picks it up; print its manifest id (or, with "
                                        "--wait, follow it to the end and print its summary).")
    upload.add_argument("file", metavar="FILE", help="the manifest file (vendor from its suffix, or --vendor)")
    upload.add_argument("--vendor", choices=("microchip", "infineon", "espressif", "generated"),
                        help="vendor format (default: from the file suffix)")
    upload.add_argument("--wait", action="store_true", help="show progress until the manifest is complete")
    upload.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait (default 1800)")
    Deployment.add_arguments(upload)
    upload.add_argument("--json", action="store_true", help="print one JSON document")
    upload.set_defaults(func=cmd_upload)
