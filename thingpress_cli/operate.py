"""Operator commands against a deployment: ``upload``, ``status``, ``report``.

They work against any deployment given its ``terraform-outputs.json`` and
environment suffix (``--outputs``/``--env``, or ``THINGPRESS_OUTPUTS`` /
``THINGPRESS_ENV``), reading names only through the outputs contract.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from thingpress import audit
from thingpress_cli.deployment import Deployment, DeploymentError

SUMMARY_FIELDS = ("manifest", "vendor", "state", "entries", "imported", "already_present", "rejected",
                  "failed", "duplicates", "queued", "reason")
REPORT_FIELDS = ("position", "thing_name", "fingerprint", "status", "reason", "certificate_id", "updated_at")


def summary_view(row: dict[str, Any]) -> dict[str, Any]:
    """The operator-facing summary of a manifest summary row."""
    view = {name: row.get(name, 0) for name in SUMMARY_FIELDS}
    view["manifest"] = row.get("manifest_id", "")
    view["state"] = row.get("state", "")
    view["vendor"] = row.get("vendor", "")
    view["reason"] = row.get("reason", "")
    view["complete"] = row.get("state") in (audit.COMPLETE, audit.REFUSED)
    view["stalled"] = row.get("state") == audit.STALLED
    for name in ("key", "version_id", "sha256", "started_at", "updated_at", "completed_at", "stalled_at"):
        if row.get(name):
            view[name] = row[name]
    return view


def wait_for(deployment: Deployment, mid: str, *, timeout: float, show_progress: bool) -> dict[str, Any]:
    """Poll the audit table until the manifest is COMPLETE, REFUSED or STALLED."""
    return wait_all(deployment, [mid], timeout=timeout, show_progress=show_progress)[mid]


#: states a waiting operator stops at: finished, or STALLED (the watchdog found nothing left to finish it).
WAIT_ENDS = (audit.COMPLETE, audit.REFUSED, audit.STALLED)


def _done(row: dict[str, Any] | None) -> bool:
    return bool(row) and row.get("state") in WAIT_ENDS


def wait_all(deployment: Deployment, mids: list[str], *, timeout: float, show_progress: bool,
             labels: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Poll the audit table until every manifest is COMPLETE, REFUSED or STALLED, with a rich progress bar each."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    table = deployment.audit_table()
    deadline = time.monotonic() + timeout
    rows: dict[str, dict[str, Any] | None] = dict.fromkeys(mids)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    with Progress(*columns, console=_console(), disable=not show_progress) as progress:
        tasks = {mid: progress.add_task((labels or {}).get(mid, mid), total=None, detail="waiting for the provider")
                 for mid in mids}
        while True:
            for mid in mids:
                if _done(rows[mid]):
                    continue
                row = rows[mid] = table.get_summary(mid)
                if not row:
                    continue
                done = sum(int(row.get(k, 0)) for k in ("imported", "already_present", "rejected", "failed", "duplicates"))
                total = int(row.get("entries", 0)) if row.get("parse_done") else None
                detail = (f"{row.get('state')}: imported {row.get('imported', 0)}, already present "
                          f"{row.get('already_present', 0)}, rejected {row.get('rejected', 0)}, failed {row.get('failed', 0)}")
                progress.update(tasks[mid], completed=done, total=total or done or None, detail=detail)
            if all(_done(r) for r in rows.values()):
                return {mid: row for mid, row in rows.items() if row}
            if time.monotonic() > deadline:
                late = {mid: summary_view(r or {}) for mid, r in rows.items() if not _done(r)}
                raise DeploymentError(f"not complete after {timeout:.0f} s: {late}")
            time.sleep(0.5)


def _console():
    from rich.console import Console

    return Console(stderr=True)


def print_summary_table(views: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="thingpress manifests")
    for name in SUMMARY_FIELDS:
        table.add_column(name, justify="right" if name not in ("manifest", "vendor", "state", "reason") else "left")
    for view in views:
        # a STALLED manifest needs the operator (its reason says what is missing)
        table.add_row(*(str(view.get(name, "")) for name in SUMMARY_FIELDS),
                      style="bold red" if view.get("state") == audit.STALLED else None)
    Console().print(table)


# -- commands ----------------------------------------------------------------

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
    return 0 if row.get("state") == audit.COMPLETE else 1


def cmd_status(args: argparse.Namespace) -> int:
    deployment = Deployment.from_args(args)
    table = deployment.audit_table()
    if args.manifest:
        row = table.get_summary(args.manifest)
        if row is None:
            raise DeploymentError(f"no manifest {args.manifest} in audit table {table.table}")
        rows = [row]
    else:
        rows = deployment.manifest_summaries()
    views = [summary_view(r) for r in rows]
    if args.json:
        print(json.dumps(views if not args.manifest else views[0], sort_keys=True))
    else:
        print_summary_table(views)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    deployment = Deployment.from_args(args)
    table = deployment.audit_table()
    if table.get_summary(args.manifest) is None:
        raise DeploymentError(f"no manifest {args.manifest} in audit table {table.table}")
    rows = sorted(table.entries(args.manifest), key=lambda r: (int(r.get("position", 0)), r.get("sk", "")))
    records = [{name: r.get(name, "") for name in REPORT_FIELDS} for r in rows]
    if args.format == "json":
        print(json.dumps(records, sort_keys=True))
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=REPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        sys.stdout.write(out.getvalue())
    return 0


def _run(func):
    def runner(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except DeploymentError as exc:
            print(f"thingpress {args.command}: {exc}", file=sys.stderr)
            return 2
    return runner


def register(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        Deployment.add_arguments(p)
        p.add_argument("--json", action="store_true", help="print one JSON document")

    upload = sub.add_parser("upload", help="put a manifest where its vendor's provider picks it up")
    upload.add_argument("file")
    upload.add_argument("--vendor", choices=("microchip", "infineon", "espressif", "generated"),
                        help="default: from the file suffix")
    upload.add_argument("--wait", action="store_true", help="show progress until the manifest is complete")
    upload.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait (default 1800)")
    common(upload)
    upload.set_defaults(func=_run(cmd_upload))

    status = sub.add_parser("status", help="manifest summaries from the audit table")
    status.add_argument("manifest", nargs="?")
    common(status)
    status.set_defaults(func=_run(cmd_status))

    report = sub.add_parser("report", help="every certificate's outcome and reason for one manifest")
    report.add_argument("manifest")
    report.add_argument("--format", choices=("csv", "json"), default="csv")
    Deployment.add_arguments(report)
    report.set_defaults(func=_run(cmd_report))
