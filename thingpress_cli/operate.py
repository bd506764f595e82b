"""Operator commands against a deployment: ``upload``, ``status``, ``report``.

They work against any deployment given its ``terraform-outputs.json`` and
environment suffix (``--outputs``/``--env``, or ``THINGPRESS_OUTPUTS`` /
``THINGPRESS_ENV``), reading names only through the outputs contract.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from thingpress.audit.states import COMPLETE, OUTCOME_COUNTERS, REFUSED, STALLED
from thingpress.audit.table import AuditTable
from thingpress_cli.deployment import Deployment, DeploymentError
from thingpress_cli.progress import Display, Meter, short_id

SUMMARY_FIELDS = ("manifest", "vendor", "state", "entries", "imported", "already_present", "rejected",
                  "failed", "duplicates", "queued", "reason")
#: the clock and sleep of ``wait_all`` when none is passed (tests replace them).
CLOCK: Callable[[], float] = time.monotonic
SLEEP: Callable[[float], None] = time.sleep
#: rows per audit query page in ``report`` (the most it holds in memory at once).
REPORT_PAGE = 500
REPORT_FIELDS = ("position", "thing_name", "fingerprint", "status", "reason", "certificate_id", "updated_at")


def summary_view(row: dict[str, Any]) -> dict[str, Any]:
    """The operator-facing summary of a manifest summary row."""
    view = {name: row.get(name, 0) for name in SUMMARY_FIELDS}
    view["manifest"] = row.get("manifest_id", "")
    view["state"] = row.get("state", "")
    view["vendor"] = row.get("vendor", "")
    view["reason"] = row.get("reason", "")
    view["short"] = short_id(view["manifest"])
    view["complete"] = row.get("state") in (COMPLETE, REFUSED)
    view["stalled"] = row.get("state") == STALLED
    # queued and not finished (in the import queue or an importer's hands; the backpressure window
    # limits it), and finished: every entry with its outcome. finished + outstanding == entries.
    view["outstanding"] = row.get("outstanding", 0)
    view["finished"] = sum(int(row.get(name) or 0) for name in OUTCOME_COUNTERS)
    # completion_event: SENT, or PENDING / FAILED when the completion event was lost (thingpress.events)
    for name in ("key", "version_id", "sha256", "started_at", "updated_at", "completed_at", "stalled_at",
                 "completion_event", "completion_event_error"):
        if row.get(name):
            view[name] = row[name]
    return view


def wait_for(deployment: Deployment, mid: str, *, timeout: float, show_progress: bool) -> dict[str, Any]:
    """Poll the audit table until the manifest is COMPLETE, REFUSED or STALLED."""
    return wait_all(deployment, [mid], timeout=timeout, show_progress=show_progress)[mid]


def wait_all(deployment: Deployment, mids: list[str], *, timeout: float, show_progress: bool,
             labels: dict[str, str] | None = None, interval: float = 0.5,
             clock: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None,
             console: Any = None) -> dict[str, dict[str, Any]]:
    """Poll the audit table until every manifest is COMPLETE, REFUSED or STALLED, showing progress per manifest.

    On a terminal each manifest gets a bar, finished/total, the current rate and the
    time left (:mod:`thingpress_cli.progress`); otherwise a plain line every few seconds.
    """
    clock, sleep = clock or CLOCK, sleep or SLEEP
    table = deployment.audit_table()
    deadline = clock() + timeout
    meters = {mid: Meter(mid, clock=clock) for mid in mids}
    names = {mid: (labels or {}).get(mid, short_id(mid)) for mid in mids}
    with Display(names, enabled=show_progress, console=console, clock=clock) as display:
        while True:
            for mid, meter in meters.items():
                if not meter.done:
                    meter.update(table.get_summary(mid))
            finished = all(m.done for m in meters.values())
            display.show(meters, final=finished)
            if finished:
                return {mid: m.row for mid, m in meters.items() if m.row}
            if clock() > deadline:
                late = {mid: summary_view(m.row or {}) for mid, m in meters.items() if not m.done}
                raise DeploymentError(f"not complete after {timeout:.0f} s: {late}")
            sleep(interval)


#: the status table: (column header, summary view field); numbers right-aligned.
#: total = entries parsed so far = queued (not finished) + done (finished: imported, already present,
#: rejected, failed or duplicate; ``status MANIFEST --json`` splits them all).
STATUS_COLUMNS = (("manifest", "short"), ("state", "state"), ("total", "entries"), ("queued", "outstanding"),
                  ("done", "finished"), ("imported", "imported"), ("failed", "failed"), ("reason", "reason"))


#: "s3://bucket/key (version v): " at the start of a provider's refusal reason.
_OBJECT_PREFIX = re.compile(r"^s3://\S+(?: \(version [^)]*\))?: ")


def print_summary_table(views: list[dict[str, Any]], console: Any = None) -> None:
    """One line per manifest: short id, state, counts, reason cut to the width left.

    Fits 80 columns: the id is the short form every command accepts as a prefix,
    the vendor is its first word, and a reason is cut with an ellipsis (the full
    text is in ``thingpress status MANIFEST --json`` and ``thingpress report``).
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0),
                  title="thingpress manifests", expand=True)
    for header, name in STATUS_COLUMNS:
        text = name in ("short", "state", "reason")
        table.add_column(header, justify="left" if text else "right", no_wrap=True, overflow="ellipsis",
                         ratio=1 if name == "reason" else None, min_width=len(header))
    for view in views:
        cells = {name: str(view.get(name) or ("" if name == "reason" else 0)) for _, name in STATUS_COLUMNS}
        cells["reason"] = _OBJECT_PREFIX.sub("", cells["reason"])  # the id already names the object
        # a STALLED manifest needs the operator (its reason says what is missing)
        table.add_row(*(cells[name] for _, name in STATUS_COLUMNS),
                      style="bold red" if view.get("state") == STALLED else None)
    (console or Console()).print(table)


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
    return 0 if row.get("state") == COMPLETE else 1


def cmd_status(args: argparse.Namespace) -> int:
    deployment = Deployment.from_args(args)
    table = deployment.audit_table()
    if args.manifest:
        mids = [deployment.resolve_manifest(args.manifest)]
    elif args.watch:
        mids = [r["manifest_id"] for r in deployment.manifest_summaries()
                if r.get("state") not in (COMPLETE, REFUSED)]
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
        _write_report(records, args.format, sys.stdout)
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


def _run(func):
    def runner(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except DeploymentError as exc:
            print(f"thingpress {args.command}: {exc}", file=sys.stderr)
            return 2
        except (BotoCoreError, ClientError) as exc:  # the deployment answered with an error, or not at all
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
    status.add_argument("manifest", nargs="?", help="manifest id or a unique prefix of it (default: all)")
    status.add_argument("--watch", action="store_true",
                        help="show progress until the manifest (default: every unfinished one) is complete")
    status.add_argument("--timeout", type=float, default=1800.0, help="seconds to watch (default 1800)")
    common(status)
    status.set_defaults(func=_run(cmd_status))

    report = sub.add_parser("report", help="every certificate's outcome and reason for one manifest")
    report.add_argument("manifest", help="manifest id or a unique prefix of it")
    report.add_argument("--format", choices=("csv", "json"), default="csv")
    Deployment.add_arguments(report)
    report.set_defaults(func=_run(cmd_report))
