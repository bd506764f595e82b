"""``thingpress reconcile MANIFEST|--all [--fix] [--json]``: the audit table against the registry.

What is checked and what ``--fix`` repairs is the engine's
(:mod:`thingpress_cli.engines.reconcile`); this module holds the command.

``--json`` prints one JSON document ``{"checked", "drift", "fixed", "by_problem",
"items": [{"manifest", "fingerprint", "thing_name", "certificate_id", "problems":
[{"problem", "detail"}], "fixed": [...]}]}``. Exit status 0 when nothing drifted
(or everything drifted was fixed), 1 otherwise; errors as every command's (``thingpress --help``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.errors import UsageError
from thingpress_cli.core.progress import short_id
from thingpress_cli.engines.reconcile import Reconciler, certificate_rows, reconcile


def _print(result: dict[str, Any], fix: bool) -> None:
    kinds = ", ".join(f"{k} {n}" for k, n in result["by_problem"].items())
    print(f"checked {result['checked']} certificates: {result['drift']} drifted" + (f" ({kinds})" if kinds else "")
          + (f", {result['fixed']} fixed" if fix else ""))
    for item in result["items"]:
        print(f"  {short_id(item['manifest'])} {item['thing_name']} {item['certificate_id'][:12]}")
        for p in item["problems"]:
            mark = " (fixed)" if p["problem"] in item["fixed"] else (" (not fixed)" if fix else "")
            print(f"    {p['problem']}: {p['detail']}{mark}")


def run(args: argparse.Namespace) -> int:
    if bool(args.manifest) == bool(args.all):
        raise UsageError("name one MANIFEST or --all")
    deployment = Deployment.from_args(args)
    mid = deployment.resolve_manifest(args.manifest) if args.manifest else None
    table = deployment.audit_table()
    reconciler = Reconciler(deployment.client("iot"), table, deployment.importer_settings(), fix=args.fix)
    result = reconcile(reconciler, certificate_rows(table, mid))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        _print(result, args.fix)
    return 0 if result["drift"] == result["fixed"] else 1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("reconcile", help="compare the audit table with the IoT registry (and repair)",
                            description="For every certificate imported or already present, check that the "
                                        "registry still holds it as the importer set it up.")
    parser.add_argument("manifest", nargs="?", help="manifest id or a unique prefix of it")
    parser.add_argument("--all", action="store_true", help="every manifest")
    parser.add_argument("--fix", action="store_true", help="re-apply what is missing (throttled) and record it")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    Deployment.add_arguments(parser)
    parser.set_defaults(func=run)
