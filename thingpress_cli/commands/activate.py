"""``thingpress activate MANIFEST|--file LIST [--attributes CSV]``: INACTIVE certificates become ACTIVE.

Two-phase provisioning: certificates imported INACTIVE (``THINGPRESS_CERTIFICATE_STATUS``) are
activated once the factory confirms the devices passed test, with the factory's facts as thing
attributes. The job runs as the pipeline does (``thingpress.lifecycle``); the reading, dry run,
submission and watch are the engine's (:mod:`thingpress_cli.engines.lifecycle`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

#: the reason recorded unless given one.
REASON = "activated by operator"


def register(subparsers: Any) -> None:
    from thingpress_cli.core.deployment import Deployment

    parser = subparsers.add_parser(
        "activate", help="make imported certificates ACTIVE, with attributes (dry run unless --yes)",
        description="Activate certificates imported INACTIVE: every certificate a manifest imported, or the "
                    "thing names, certificate ids or vendor device ids of a list file (one a line). Optional "
                    "attributes go on each thing first (merged; within IoT's limits). A REVOKED certificate is "
                    "refused: AWS IoT lets no revoked certificate change status (IoT developer guide, \"Revoke "
                    "a client certificate\"; the UpdateCertificate API reference does not say it). Without --yes, "
                    "only print what would change; with it, the job runs on the deployment (one message per "
                    "batch) and this command waits for it. The same command again resumes it.")
    parser.add_argument("manifest", metavar="MANIFEST", nargs="?",
                        help="manifest id or a unique prefix of it: every certificate it imported")
    parser.add_argument("--file", metavar="LIST", type=Path,
                        help="a list file instead: one thing name, certificate id or device id a line")
    parser.add_argument("--attributes", metavar="CSV", type=Path,
                        help="thing attributes: a header thing_name or certificate_id, then attribute names; "
                             "a row per device")
    parser.add_argument("--reason", default=REASON, help=f"recorded on every row (default: {REASON!r})")
    parser.add_argument("--yes", action="store_true", help="apply (default: only print what would change)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the job (default 1800)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    Deployment.add_arguments(parser)
    parser.set_defaults(func=cmd_activate)


def cmd_activate(args: argparse.Namespace) -> int:
    from thingpress.lifecycle.jobs import ACTIVATE, ACTIVE, Request
    from thingpress_cli.core.deployment import Deployment
    from thingpress_cli.core.errors import UsageError
    from thingpress_cli.engines import lifecycle

    if bool(args.manifest) == bool(args.file):
        raise UsageError("name a MANIFEST or a --file LIST (one of them)")
    attributes = lifecycle.read_attributes(args.attributes) if args.attributes else {}
    listed = lifecycle.read_list(args.file) if args.file else None
    deployment = Deployment.from_args(args)
    if listed is not None:
        entries = lifecycle.file_entries(listed, attributes, args.attributes)
    else:
        mid = deployment.resolve_manifest(args.manifest)
        entries = lifecycle.manifest_entries(lifecycle.job_table(deployment), mid, attributes, args.attributes)
    request = Request(ACTIVATE, ACTIVE, args.reason, lifecycle.caller(deployment))
    return lifecycle.run(deployment, request, entries, apply=args.yes, as_json=args.json, timeout=args.timeout)
