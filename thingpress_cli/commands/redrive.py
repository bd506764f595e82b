"""``thingpress redrive [--queue import|manifests|lifecycle|results|all] [--json]``: DLQ messages back to their queues.

Uses SQS's own message move task (``StartMessageMoveTask`` with the DLQ as source
and no destination, so each message returns to the queue it was dead-lettered
from), then follows it with ``ListMessageMoveTasks`` until it ends. A DLQ that is
empty is not touched; one that already has a task running is followed, not
started again (SQS allows one active task per queue).

A redriven import message is imported again: the importer replaces the
certificate's ``FAILED`` row with the new outcome (``AuditTable.resolve_failed``).
A redriven manifest message resumes its manifest from the checkpoint. A redriven lifecycle
batch is run again (a batch's rows and counts are written once: what it already did is not
done twice) and its job goes on; a redriven completion event in the results DLQ writes the
manifest's results files (written once: if they exist, nothing changes).

A redrive of the import DLQ (``--queue import`` or ``all``), whether it moved anything or
not (the DLQ may have been redriven by other means), is noted on every STALLED manifest
(``AuditTable.note_redrive``): the watchdog looks at those again once the redrive has been
idle for its threshold, completes the ones the redriven imports finished, counts what an
import that died between its rows and their count left uncounted, and marks the rest
STALLED again with what they lack now (``thingpress.watchdog``).

``--json`` prints one JSON document::

    {"moved": N, "failed": N, "queues": [{"queue", "dlq", "messages", "moved",
     "status", "failure"}], "stalled_noted": [manifest id, ...]}

``status`` per queue: ``EMPTY`` (nothing to move), or the task's final status
(``COMPLETED``, ``CANCELLED``, ``FAILED``); exit status 0 when every task that ran
completed, 1 otherwise; errors as every command's (``thingpress --help``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from thingpress.audit.states import STALLED
from thingpress.audit.table import AuditTable
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.errors import NotFinished, ServiceError

QUEUES = ("import", "manifests", "lifecycle", "results", "all")
EMPTY = "EMPTY"
ACTIVE = ("RUNNING", "CANCELLING")
#: seconds between ListMessageMoveTasks polls, and the longest wait per queue.
POLL = 1.0
TIMEOUT = 900.0


@dataclass(frozen=True, slots=True)
class DeadLetters:
    name: str
    dlq_url: str
    dlq_arn: str


def dead_letter_queues(deployment: Deployment, which: str) -> list[DeadLetters]:
    out = deployment.outputs
    found: list[DeadLetters] = []
    if which in ("import", "all"):
        found.append(DeadLetters("import", out.import_dlq_url, out.import_dlq_arn))
    if which in ("manifests", "all"):
        found += [DeadLetters(f"manifests/{v.vendor}", v.manifest_dlq_url, v.manifest_dlq_arn)
                  for v in out.vendors.values()]
    if which in ("lifecycle", "all"):
        found.append(DeadLetters("lifecycle", out.lifecycle_dlq_url, out.lifecycle_dlq_arn))
    if which in ("results", "all"):
        found.append(DeadLetters("results", out.results_dlq_url, out.results_dlq_arn))
    return found


def redrive(sqs: Any, dlq: DeadLetters, *, poll: float = POLL, timeout: float = TIMEOUT,
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Start (or follow) the DLQ's move task and wait for it to end."""
    messages = int(sqs.get_queue_attributes(QueueUrl=dlq.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
                   ["Attributes"]["ApproximateNumberOfMessages"])
    report: dict[str, Any] = {"queue": dlq.name, "dlq": dlq.dlq_arn, "messages": messages, "moved": 0,
                              "status": EMPTY, "failure": None}
    latest = sqs.list_message_move_tasks(SourceArn=dlq.dlq_arn, MaxResults=1).get("Results", [])
    running = bool(latest) and latest[0]["Status"] in ACTIVE
    if messages == 0 and not running:
        return report
    handle = latest[0]["TaskHandle"] if running else sqs.start_message_move_task(SourceArn=dlq.dlq_arn)["TaskHandle"]
    deadline = clock() + timeout
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=dlq.dlq_arn, MaxResults=10).get("Results", [])
        task = next((t for t in tasks if t["TaskHandle"] == handle), None)
        if task is None:
            raise ServiceError(f"{dlq.name}: move task {handle} no longer listed")
        if task["Status"] not in ACTIVE:
            report.update(moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)), status=task["Status"],
                          failure=task.get("FailureReason"))
            return report
        if clock() > deadline:
            raise NotFinished(f"{dlq.name}: move task still {task['Status']} after {timeout:.0f} s "
                                  f"({task.get('ApproximateNumberOfMessagesMoved', 0)} moved); "
                                  "run thingpress redrive again to follow it")
        sleep(poll)


def note_on_stalled(table: AuditTable) -> list[str]:
    """Note the import DLQ's redrive on every STALLED manifest (module docstring); the ids noted."""
    return [mid for mid in table.listed_by_state([STALLED]) if table.note_redrive(mid)]


def run(args: argparse.Namespace) -> int:
    deployment = Deployment.from_args(args)
    sqs = deployment.client("sqs")
    reports = [redrive(sqs, dlq) for dlq in dead_letter_queues(deployment, args.queue)]
    noted = note_on_stalled(deployment.audit_table()) if args.queue in ("import", "all") else []
    result = {"moved": sum(r["moved"] for r in reports),
              "failed": sum(1 for r in reports if r["status"] not in (EMPTY, "COMPLETED")), "queues": reports,
              "stalled_noted": noted}
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for r in reports:
            detail = "empty" if r["status"] == EMPTY else f"{r['moved']} of {r['messages']} moved, {r['status']}"
            print(f"{r['queue']:<22} {detail}" + (f": {r['failure']}" if r["failure"] else ""))
        print(f"moved {result['moved']} messages back to their queues")
        if noted:
            print(f"{len(noted)} STALLED manifest(s) noted as redriven: the watchdog looks at them again once "
                  "the redrive has been idle for its threshold")
    return 0 if result["failed"] == 0 else 1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("redrive", help="move dead-lettered messages back to their queues (SQS move task)",
                            description="Move the messages of the dead-letter queues back to the queues they "
                                        "came from, with SQS's message move task, and report the counts.")
    parser.add_argument("--queue", choices=QUEUES, default="all",
                        help="the import DLQ, the vendors' manifest DLQs, the lifecycle jobs' DLQ, the results "
                             "writer's DLQ, or all (default)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    Deployment.add_arguments(parser)
    parser.set_defaults(func=run)
