"""``thingpress report MANIFEST [--format csv|json] [--from-results | --from-table]``: every certificate's
outcome and reason for one manifest.

Two sources, both streamed so a million-entry manifest is never held in memory:

* the manifest's **results file** (``results/<manifest>/results.jsonl`` in the manifests bucket,
  ``thingpress.results``), read line by line: the rows as they were when the manifest completed.
  Used by default once the manifest's summary notes its results files, and with ``--from-results``
  (then read by its key even before the note; no file is an error);
* the **audit table**, a query page at a time: the rows as they are now (a FAILED outcome resolved
  by a redrive, a rollback: after completion, only the table has them). Used by default until the
  files are noted, and with ``--from-table``.

Both give the same columns (``REPORT_FIELDS``, the results file's fields), in the same (key) order.
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
from thingpress.results.keys import FIELDS, results_keys
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.errors import UsageError

#: rows per audit query page in ``report`` (the most it holds in memory at once).
REPORT_PAGE = 500
#: the report's columns: the results file's fields (one definition).
REPORT_FIELDS = FIELDS


def report_records(table: AuditTable, mid: str) -> Iterator[dict[str, Any]]:
    """Every entry row of the manifest, one page at a time (never the whole manifest in memory).

    In key order: certificate rows (``C#<fingerprint>``) then the provider's refusals
    (``R#<position>``); each record carries its position.
    """
    for row in table.iter_entries(mid, page_size=REPORT_PAGE):
        yield {name: row.get(name, "") for name in REPORT_FIELDS}


def results_records(s3: Any, bucket: str, key: str) -> Iterator[dict[str, Any]]:
    """Every line of a results file as a report record, read as it streams in (null shows as the
    table's missing attribute does: empty). A missing file is an error at once, before any output."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except s3.exceptions.NoSuchKey:
        raise UsageError(f"no results file s3://{bucket}/{key} (yet): the results writer writes it shortly "
                         "after the manifest completes; --from-table reads the audit table") from None
    return _results_lines(body)


def _results_lines(body: Any) -> Iterator[dict[str, Any]]:
    for line in body.iter_lines():
        if line:
            row = json.loads(line)
            yield {name: "" if row.get(name) is None else row[name] for name in REPORT_FIELDS}


def records_of(deployment: Deployment, mid: str, source: str) -> Iterator[dict[str, Any]]:
    """The report's records from ``source`` (``results``, ``table`` or ``auto``: module docstring)."""
    table = deployment.audit_table()
    if source == "auto":
        noted = (table.get_summary(mid) or {}).get("results")
        source = "results" if noted else "table"
    if source == "table":
        return report_records(table, mid)
    bucket, key = deployment.outputs.bucket_name, results_keys(mid)["results_key"]
    records = results_records(deployment.client("s3"), bucket, key)
    print(f"thingpress report: from s3://{bucket}/{key} (the rows at completion; --from-table for the audit "
          "table now)", file=sys.stderr)
    return records


def cmd_report(args: argparse.Namespace) -> int:
    deployment = Deployment.from_args(args)
    mid = deployment.resolve_manifest(args.manifest)
    records = records_of(deployment, mid, args.source)
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
    source = report.add_mutually_exclusive_group()
    source.add_argument("--from-results", dest="source", action="store_const", const="results",
                        help="stream the manifest's results file (the rows at completion; default once written)")
    source.add_argument("--from-table", dest="source", action="store_const", const="table",
                        help="query the audit table (the rows now; default until the results file is written)")
    report.set_defaults(source="auto")
    Deployment.add_arguments(report)
    report.set_defaults(func=cmd_report)
