"""The lifecycle engine: what ``thingpress activate`` and ``thingpress deactivate`` read, submit and watch.

The commands read the operator's list (a manifest's certificates, or a file of thing names,
certificate ids or vendor device ids) and the attributes CSV, checking every line (an error names
the file, the line and why); then

* without ``--yes`` (the default) they run the function's own logic here with nothing changed
  (:class:`~thingpress.lifecycle.worker.LifecycleWorker` without ``apply``: the same resolution and
  reads, no write) and report what would be recorded;
* with ``--yes`` they submit the job as the pipeline runs it (:mod:`thingpress.lifecycle`): the
  job's summary in the audit table, one message per batch on the lifecycle queue; then watch the
  summary until every entry is counted and the results files are written. The same request
  again resumes the job (the batches not yet sent) or finds it done.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thingpress import patterns
from thingpress.attributes import settable_problem
from thingpress.audit.states import ALREADY_PRESENT, IMPORTED
from thingpress.lifecycle.jobs import (
    BATCH_ENTRIES,
    COUNTER,
    ERROR_OUTCOMES,
    JOB_COMPLETE,
    LIFECYCLE_TPS,
    OUTCOMES,
    BatchMessage,
    Entry,
    Request,
    job_id,
)
from thingpress.lifecycle.resolve import CERTIFICATE_ID, Resolver
from thingpress.lifecycle.store import JobTable
from thingpress.lifecycle.worker import LifecycleWorker
from thingpress.results.keys import noted_results
from thingpress.throttle import Throttle
from thingpress_cli.core.errors import NotFinished, ServiceError, UsageError
from thingpress_cli.core.streams import warn

#: the first column of an attributes CSV: what its rows are keyed by.
ATTRIBUTE_KEYS = ("thing_name", "certificate_id")
#: SQS SendMessageBatch takes at most 10 messages.
SEND_BATCH = 10
#: problems listed in a report (all of them are in --json and the errors file).
SHOWN_PROBLEMS = 20
POLL_SECONDS = 1.0
PROGRESS_EVERY_SECONDS = 5.0
#: how the watch waits between polls (tests replace it).
SLEEP: Callable[[float], None] = time.sleep


# -- reading the operator's files ---------------------------------------------------------

def read_list(path: Path) -> list[tuple[int, str]]:
    """The entries of a list file with their line numbers: one a line, blank lines and ``#`` comments skipped."""
    entries: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(_lines(path), start=1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        if not (patterns.THING_NAME.fullmatch(text) or CERTIFICATE_ID.fullmatch(text)):
            raise UsageError(f"{path}:{number}: {text!r} is no thing name, certificate id or device id "
                             "(letters, digits, ':', '_', '-', at most 128)")
        if text in seen:
            raise UsageError(f"{path}:{number}: {text} is listed already (line {seen[text]})")
        seen[text] = number
        entries.append((number, text))
    if not entries:
        raise UsageError(f"{path}: no entries (one thing name, certificate id or device id a line)")
    return entries


def read_attributes(path: Path) -> dict[str, dict[str, str]]:
    """An attributes CSV: a header ``thing_name`` or ``certificate_id`` then attribute names; a row per
    device; an empty cell sets nothing. Every name and value within IoT's rules (``thingpress.attributes``)."""
    rows = list(csv.reader(_lines(path)))
    if not rows or not rows[0] or rows[0][0].strip() not in ATTRIBUTE_KEYS or len(rows[0]) < 2:
        raise UsageError(f"{path}:1: the header must be {' or '.join(ATTRIBUTE_KEYS)}, then attribute names")
    names = [n.strip() for n in rows[0][1:]]
    for name in names:
        if problem := settable_problem(name, ""):
            raise UsageError(f"{path}:1: {problem}")
    found: dict[str, dict[str, str]] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names) + 1:
            raise UsageError(f"{path}:{number}: {len(row)} fields, the header has {len(names) + 1}")
        key = row[0].strip()
        if key in found:
            raise UsageError(f"{path}:{number}: {key} has attributes already (an earlier line)")
        values = {name: cell.strip() for name, cell in zip(names, row[1:], strict=True) if cell.strip()}
        for name, value in values.items():
            if problem := settable_problem(name, value):
                raise UsageError(f"{path}:{number}: {key}: {problem}")
        found[key] = values
    return found


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read ({exc})") from None


def file_entries(listed: Sequence[tuple[int, str]], attributes: dict[str, dict[str, str]],
                 attributes_path: Path | None = None) -> list[Entry]:
    """The entries of a list file, each with the attributes keyed by its text; a key no entry names is an error."""
    unused = sorted(set(attributes) - {text for _, text in listed})
    if unused:
        raise UsageError(f"{attributes_path}: {len(unused)} key(s) name no entry of the list: {', '.join(unused[:5])}")
    return [Entry(number, text, attributes=attributes.get(text, {})) for number, text in listed]


def manifest_entries(table: JobTable, mid: str, attributes: dict[str, dict[str, str]],
                     attributes_path: Path | None = None) -> list[Entry]:
    """The certificates a manifest imported (rows IMPORTED or ALREADY_PRESENT), each with the attributes
    keyed by its thing name or certificate id."""
    entries, named = [], set()
    for row in table.iter_entries(mid):
        if row.get("status") not in (IMPORTED, ALREADY_PRESENT) or not row.get("certificate_id"):
            continue
        keys = [k for k in (row.get("thing_name"), row["certificate_id"]) if k in attributes]
        named.update(keys)
        entries.append(Entry(int(row["position"]), row["certificate_id"], mid,
                             attributes=attributes[keys[0]] if keys else {}))
    unused = sorted(set(attributes) - named)
    if unused:
        raise UsageError(f"{attributes_path}: {len(unused)} key(s) name no certificate or thing of manifest {mid}: "
                         f"{', '.join(unused[:5])}")
    if not entries:
        raise UsageError(f"manifest {mid} imported no certificate: nothing to do")
    return sorted(entries, key=lambda e: e.position)


def batches(job: str, request: Request, entries: Sequence[Entry]) -> list[BatchMessage]:
    return [BatchMessage(job, n, request, tuple(entries[start:start + BATCH_ENTRIES]))
            for n, start in enumerate(range(0, len(entries), BATCH_ENTRIES))]


# -- running ---------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What a job did (or, dry, would do): counts per outcome and the rows that are problems."""

    job_id: str
    applied: bool
    request: Request
    entries: int
    counts: dict[str, int]
    problems: list[dict[str, Any]]
    results: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "applied": self.applied, "action": self.request.action,
                "status": self.request.target, "reason": self.request.reason,
                "requested_by": self.request.requested_by, "entries": self.entries, "counts": self.counts,
                "problems": self.problems, "results": self.results}


def caller(deployment: Any) -> str:
    """Who asks: the caller's identity (STS ``GetCallerIdentity``), recorded on every row."""
    return str(deployment.client("sts").get_caller_identity()["Arn"])


def job_table(deployment: Any) -> JobTable:
    return JobTable(deployment.client("dynamodb"), deployment.outputs.audit_table_name)


def dry_run(deployment: Any, request: Request, entries: Sequence[Entry], *,
            throttle: Throttle | None = None) -> Outcome:
    """What the job would record: the function's logic with nothing changed (reads only), as if its batches
    were sent now (the ``by_thing`` index is read two seconds on, as the function reads it)."""
    table, iot = job_table(deployment), deployment.client("iot")
    throttle = throttle or Throttle(LIFECYCLE_TPS)
    worker = LifecycleWorker(iot, table, Resolver(table, iot, throttle, deployment.thing_names()), throttle,
                             apply=False)
    job, asked = job_id(request, entries), time.time()
    rows = [row for message in batches(job, request, entries) for row in worker.rows(message, sent_at=asked)]
    return _outcome(job, False, request, len(entries), rows)


def submit(deployment: Any, request: Request, entries: Sequence[Entry]) -> str:
    """Create the job (or find it) and send the batches it has not sent yet; its id."""
    table, sqs = job_table(deployment), deployment.client("sqs")
    url = deployment.outputs.lifecycle_queue_url
    job = job_id(request, entries)
    messages = batches(job, request, entries)
    table.create_job(job, request, entries=len(entries), batches=len(messages))
    sent = int((table.get_job(job) or {}).get("batches_sent", 0))
    for start in range(sent, len(messages), SEND_BATCH):
        chunk = messages[start:start + SEND_BATCH]
        answer = sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(m.batch), "MessageBody": m.encode()} for m in chunk])
        if answer.get("Failed"):
            failed = answer["Failed"][0]
            raise ServiceError(f"job {job}: SQS refused batch {failed['Id']} ({failed.get('Code')}: "
                               f"{failed.get('Message')}); {start} of {len(messages)} batches sent: the same command "
                               "resumes")
        table.note_sent(job, start + len(chunk))
    return job


def watch(deployment: Any, job: str, *, timeout: float, show_progress: bool,
          clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] | None = None) -> Outcome:
    """Poll the job's summary until it is complete (its results files written); its outcome."""
    sleep = sleep or SLEEP
    table = job_table(deployment)
    deadline, shown = clock() + timeout, clock()
    while True:
        summary = table.get_job(job) or {}
        if summary.get("state") == JOB_COMPLETE:
            rows = [r for r in table.iter_rows(job) if r.get("status") in ERROR_OUTCOMES]
            request = Request(summary["action"], summary["target"], summary["reason"], summary["requested_by"])
            outcome = _outcome(job, True, request, int(summary["entries"]), rows)
            outcome.counts = {o: int(summary.get(COUNTER[o], 0)) for o in OUTCOMES}
            outcome.results = noted_results(summary)
            return outcome
        if clock() > deadline:
            raise NotFinished(f"job {job}: {summary.get('entries_done', 0)} of {summary.get('entries', '?')} entries "
                              f"done after {timeout:.0f} s; it goes on: run the same command to watch it again")
        if show_progress and clock() - shown >= PROGRESS_EVERY_SECONDS:
            shown = clock()
            warn(f"job {job}: {summary.get('entries_done', 0)}/{summary.get('entries', '?')} entries")
        sleep(POLL_SECONDS)


def _outcome(job: str, applied: bool, request: Request, entries: int, rows: list[dict[str, Any]]) -> Outcome:
    counts = dict.fromkeys(OUTCOMES, 0)
    for row in rows:
        counts[row["status"]] += 1
    problems = [{"position": r["position"], "entry": r["entry"], "status": r["status"],
                 "certificate_id": r.get("certificate_id"), "detail": r.get("detail")}
                for r in rows if r["status"] in ERROR_OUTCOMES]
    return Outcome(job, applied, request, entries, counts, problems)


def print_outcome(outcome: Outcome, *, note: str | None = None) -> None:
    """The report on stdout: the counts, then each problem in full on a line of its own."""
    verb = "done" if outcome.applied else "would be done (dry run: --yes applies)"
    request = outcome.request
    lines = [f"{request.action} {outcome.entries} entries (status {request.target}), job {outcome.job_id}; {verb}:"]
    lines += [f"  {name.lower():12} {count}" for name, count in outcome.counts.items() if count]
    for problem in outcome.problems[:SHOWN_PROBLEMS]:
        lines.append(f"  {problem['status']} entry {problem['position']} {problem['entry']}:")
        lines.append(f"    {problem['detail']}")
    if len(outcome.problems) > SHOWN_PROBLEMS:
        lines.append(f"  ... and {len(outcome.problems) - SHOWN_PROBLEMS} more (--json lists them all)")
    if outcome.results:
        lines.append(f"  results: {outcome.results['results_key']}, errors: {outcome.results['errors_key']}")
    print("\n".join(lines))
    if note:
        warn(note)


def run(deployment: Any, request: Request, entries: Sequence[Entry], *, apply: bool, as_json: bool,
        timeout: float, note: str | None = None) -> int:
    """A command's run: the dry run, or the job submitted and watched; the report; 1 when an entry was
    refused, unknown or failed (a finding), else 0."""
    from thingpress_cli.core.streams import print_json

    if apply:
        job = submit(deployment, request, entries)
        outcome = watch(deployment, job, timeout=timeout, show_progress=not as_json)
    else:
        outcome = dry_run(deployment, request, entries)
    if as_json:
        print_json(outcome.as_dict())
    else:
        print_outcome(outcome, note=note)
    return 1 if outcome.problems else 0
