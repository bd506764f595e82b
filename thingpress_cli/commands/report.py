"""``thingpress report MANIFEST [--format csv|json]``: every certificate's outcome and reason for one manifest.

Streams the manifest's entry rows from the audit table a page at a time, so a
100,000-certificate manifest is never held in memory.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

from thingpress.audit.table import AuditTable
from thingpress_cli.core.deployment import Deployment

#: rows per audit query page in ``report`` (the most it holds in memory at once).
REPORT_PAGE = 500
REPORT_FIELDS = ("position", "thing_name", "fingerprint", "status", "reason", "certificate_id", "updated_at")


def report_records(table: AuditTable, mid: str) -> Iterator[dict[str, Any]]:
    """Every entry row of the manifest, one page at a time (never the whole manifest in memory).

    In key order: certificate rows (``C#<fingerprint>``) then the provider's refusals
    (``R#<position>``); each record carries its position.
    """
    for row in table.iter_entries(mid, page_size=REPORT_PAGE):
        yield {name: row.get(name, "") for name in REPORT_FIELDS}


def cmd_report(args: argparse.Namespace) -> int:
    deployment = Deployment.from_args(args)
    mid = deployment.resolve_manifest(args.manifest)
    records = report_records(deployment.audit_table(), mid)
    try:
        _write_report(records, "json" if args.json else args.format, sys.stdout)
    except BrokenPipeError:  # e.g. `thingpress report M | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- keeps the interpreter's final flush quiet
    return 0


def _write_report(records: Iterator[dict[str, Any]], fmt: str, out: Any) -> None:
    if fmt == "json":
        # A JSON array written row by row: still one JSON document.
        out.write("[")
        for i, record in enumerate(records):
            out.write((", " if i else "") + json.dumps(record, sort_keys=True))
        out.write("]\n")
    else:
        writer = csv.DictWriter(out, fieldnames=REPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow(record)


def register(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="every certificate's outcome and reason for one manifest",
                            description="Every entry of one manifest with its outcome and reason (imported, "
                                        "already present, rejected, failed), as CSV or JSON, streamed.")
    report.add_argument("manifest", help="manifest id or a unique prefix of it")
    report.add_argument("--format", choices=("csv", "json"), default="csv",
                        help="csv (default: a header line, then a row per entry) or json (one array)")
    report.add_argument("--json", action="store_true", help="the same as --format json")
    Deployment.add_arguments(report)
    report.set_defaults(func=cmd_report)
