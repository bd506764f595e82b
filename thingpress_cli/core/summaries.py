"""Manifest summaries as the operator sees them: the view of a summary row, the table, waiting for completion.

``upload --wait``, ``status`` (``--watch``) and the demo show manifests through
these; the integration tests and benchmarks wait with :func:`wait_for`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from thingpress.audit.states import COMPLETE, OUTCOME_COUNTERS, REFUSED, STALLED
from thingpress.results.keys import noted_results
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.errors import NotFinished
from thingpress_cli.core.progress import Display, Meter, short_id

SUMMARY_FIELDS = ("manifest", "vendor", "state", "entries", "imported", "already_present", "rejected",
                  "failed", "duplicates", "queued", "reason")
#: the clock and sleep of ``wait_all`` when none is passed (tests replace them).
CLOCK: Callable[[], float] = time.monotonic
SLEEP: Callable[[float], None] = time.sleep


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
    # completion_event: SENT, or PENDING / FAILED when the completion event was lost (thingpress.events);
    # results: where the results files are, once written (thingpress.results)
    for name in ("key", "version_id", "sha256", "started_at", "updated_at", "completed_at", "stalled_at",
                 "completion_event", "completion_event_error"):
        if row.get(name):
            view[name] = row[name]
    results = noted_results(row)
    if results:
        view["results"] = results
    return view


#: seconds between two reads of the summaries: a number, or what a function of the meters says.
Interval = float | Callable[[dict[str, Meter]], float]


def wait_for(deployment: Deployment, mid: str, *, timeout: float, show_progress: bool,
             interval: Interval = 0.5) -> dict[str, Any]:
    """Poll the audit table (every ``interval`` seconds) until the manifest is COMPLETE, REFUSED or STALLED."""
    return wait_all(deployment, [mid], timeout=timeout, show_progress=show_progress, interval=interval)[mid]


def wait_all(deployment: Deployment, mids: list[str], *, timeout: float, show_progress: bool,
             labels: dict[str, str] | None = None, interval: Interval = 0.5,
             clock: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None,
             console: Any = None) -> dict[str, dict[str, Any]]:
    """Poll the audit table until every manifest is COMPLETE, REFUSED or STALLED, showing progress per manifest.

    On a terminal each manifest gets a bar, finished/total, the current rate and the
    time left (:mod:`thingpress_cli.core.progress`); otherwise a plain line every few seconds.
    ``interval`` may be a function of the meters (manifest id -> ``Meter``), read after each round.
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
                raise NotFinished(f"not complete after {timeout:.0f} s: {late}")
            sleep(interval(meters) if callable(interval) else interval)


#: the status table: (column header, summary view field); numbers right-aligned.
#: total = entries parsed so far = queued (not finished) + done (finished: imported, already present,
#: rejected, failed or duplicate; ``status MANIFEST --json`` splits them all).
STATUS_COLUMNS = (("manifest", "short"), ("state", "state"), ("total", "entries"), ("queued", "outstanding"),
                  ("done", "finished"), ("imported", "imported"), ("failed", "failed"), ("reason", "reason"))


#: "s3://bucket/key (version v): " at the start of a provider's refusal reason.
_OBJECT_PREFIX = re.compile(r"^s3://\S+(?: \(version [^)]*\))?: ")


def print_table(table: Any, column: int, labels: list[str], console: Any = None) -> None:
    """Print ``table``, then each cell of ``column`` it had to cut, in full, on lines of its own under it.

    The tables fit the terminal (80 columns): a cell too long for its column ends in an
    ellipsis there, and is printed whole under the table as ``<its row's label>: <text>``
    (wrapped to the terminal's width). The column's width is the one rich renders it at.
    """
    from rich.cells import cell_len
    from rich.console import Console

    console = console or Console()
    console.print(table)
    options = console.options.update_width(console.options.max_width - table._extra_width)
    width = table._calculate_column_widths(console, options)[column]  # as Table.__rich_console__ computes it
    cells = [str(cell) for cell in table.columns[column]._cells]
    for label, text in zip(labels, cells):
        if cell_len(text) > width:
            console.print(f"{label}: {text}", markup=False, highlight=False)


def print_summary_table(views: list[dict[str, Any]], console: Any = None) -> None:
    """One line per manifest: short id, state, counts, reason cut to the width left (then in full, under it).

    Fits 80 columns: the id is the short form every command accepts as a prefix,
    and a reason too long for the width left is cut with an ellipsis in the table
    and printed in full under it (:func:`print_table`).
    """
    from rich import box
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
    reason = [name for _, name in STATUS_COLUMNS].index("reason")
    print_table(table, reason, [view["short"] for view in views], console)
