"""The watchdog: no manifest stays unfinished for ever without anyone noticing.

The scheduled watchdog function (``lambdas/watchdog``) runs :meth:`Watchdog.sweep`.
A sweep lists the manifests still in progress (``RECEIVED``, ``PARSING``,
``QUEUED``) whose last progress (the summary's ``updated_at``, moved by every
provider checkpoint, importer outcome and backpressure pause) is older than
``stall_after_seconds`` (twice the provider timeout: no live invocation goes that
long without a checkpoint, and a pause is shorter than one timeout), re-reads each summary consistently and then

* **parse not finished** (``parse_done`` false): sends a continuation message
  (``thingpress.provider.Continuation``) to the vendor's manifest queue. The
  provider carries on from the stored checkpoint; a continuation for a manifest
  that has moved on or finished changes nothing (checkpoints are conditional),
  so a duplicate, from a second watchdog or a later sweep, is harmless.
* **parsed, nothing outstanding, counters add up** but not COMPLETE (the last
  outcome's completion check was lost): completes it (``AuditTable.try_complete``).
* **parsed, counters do not add up**: if no import message remains (import queue
  and its dead-letter queue both hold none: visible + in flight + delayed == 0),
  nothing will ever bring the missing outcomes: the manifest is marked
  ``STALLED`` with a reason naming what is missing (a conditional update: of two
  racing watchdogs one marks it, and progress made meanwhile wins). While import
  messages remain, the importer (or an operator's DLQ redrive) still has work: it
  is left alone.

``COMPLETE``, ``REFUSED`` and ``STALLED`` manifests are never looked at. A
manifest the provider keeps failing on gets a continuation on every sweep; each
ends in the manifest queue's DLQ, whose alarm makes the failure visible.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from thingpress import audit
from thingpress.audit import AuditTable
from thingpress.provider import Continuation, ObjectRef

#: the watchdog's metrics (Powertools, namespace ``thingpress``); the stack's alarm watches it.
METRICS_SERVICE = "watchdog"
STALLED_METRIC = "ManifestsStalled"
RESUMED_METRIC = "ManifestsResumed"
#: SQS attributes that together count every message a queue still holds.
QUEUE_COUNT_ATTRIBUTES = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                          "ApproximateNumberOfMessagesDelayed")
_ISO = "%Y-%m-%dT%H:%M:%SZ"

logger = Logger(service="thingpress-watchdog")


@dataclass(slots=True)
class SweepResult:
    """What one sweep did: manifests examined, resumed (continuation sent or completed) and marked STALLED."""

    checked: int = 0
    resumed: list[str] = field(default_factory=list)
    stalled: list[str] = field(default_factory=list)


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, _ISO).replace(tzinfo=UTC).timestamp()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(_ISO)


def missing_outcomes(summary: dict[str, Any]) -> int:
    """Entries of a parsed manifest that have no outcome yet (0 when the counters add up)."""
    return int(summary.get("entries", 0)) - sum(int(summary.get(c, 0)) for c in audit.OUTCOME_COUNTERS)


class Watchdog:
    """Resumes manifests that made no progress; marks STALLED those nothing can resume.

    ``manifest_queue_urls``: vendor -> that vendor's manifest queue URL.
    ``import_dlq_url``: None when the import queue has no DLQ (then only the queue is checked).
    ``clock``: epoch seconds (injectable for tests).
    """

    def __init__(self, *, audit: AuditTable, sqs: Any, manifest_queue_urls: dict[str, str],
                 import_queue_url: str, import_dlq_url: str | None, stall_after_seconds: float,
                 clock: Callable[[], float] = time.time):
        if stall_after_seconds <= 0:
            raise ValueError(f"stall_after_seconds must be positive, got {stall_after_seconds}")
        self.audit = audit
        self.sqs = sqs
        self.manifest_queue_urls = dict(manifest_queue_urls)
        self.import_queue_url = import_queue_url
        self.import_dlq_url = import_dlq_url
        self.stall_after_seconds = stall_after_seconds
        self.clock = clock

    def sweep(self) -> SweepResult:
        """One pass over the idle unfinished manifests (see the module docstring)."""
        result = SweepResult()
        now = self.clock()
        cutoff = now - self.stall_after_seconds
        imports_left: int | None = None  # read once per sweep, and only if needed
        for listed in self.audit.unfinished_manifests(idle_since=_iso(cutoff)):
            mid = listed["manifest_id"]
            summary = self.audit.get_summary(mid)  # the index is eventually consistent
            if (summary is None or summary.get("state") not in audit.UNFINISHED_STATES
                    or _epoch(summary["updated_at"]) >= cutoff):
                continue
            result.checked += 1
            if not summary.get("parse_done"):
                if self._continue(summary):
                    result.resumed.append(mid)
                    logger.warning("manifest made no progress; continuation sent", extra={
                        "manifest_id": mid, "state": summary.get("state"), "checkpoint": summary.get("checkpoint"),
                        "last_progress": summary["updated_at"]})
                continue
            missing = missing_outcomes(summary)
            outstanding = int(summary.get("outstanding", 0))
            if missing == 0 and outstanding == 0:
                if self.audit.try_complete(mid):
                    result.resumed.append(mid)
                    logger.warning("manifest had every outcome but was not complete; completed",
                                   extra={"manifest_id": mid})
                continue
            if imports_left is None:
                imports_left = self._import_messages_left()
            if imports_left:
                continue  # the importer (or a redrive) still has messages that may bring the outcomes
            reason = (f"parsed, but {missing} of {summary.get('entries', 0)} entries have no outcome "
                      f"(outstanding {outstanding}) and no import message remains (import queue and "
                      f"dead-letter queue empty); no progress since {summary['updated_at']}")
            if self.audit.mark_stalled(mid, reason, seen_updated_at=summary["updated_at"],
                                       seen_outstanding=outstanding, now=datetime.fromtimestamp(now, UTC)):
                result.stalled.append(mid)
                logger.error("manifest STALLED", extra={"manifest_id": mid, "reason": reason})
        return result

    def _continue(self, summary: dict[str, Any]) -> bool:
        """Send the manifest's continuation; False (logged) if its vendor has no manifest queue here."""
        vendor = summary.get("vendor", "")
        url = self.manifest_queue_urls.get(vendor)
        if not url:
            logger.error("cannot resume manifest: no manifest queue for its vendor", extra={
                "manifest_id": summary["manifest_id"], "vendor": vendor,
                "known_vendors": sorted(self.manifest_queue_urls)})
            return False
        ref = ObjectRef(bucket=summary["bucket"], key=summary["key"], version_id=summary.get("version_id"),
                        etag=summary.get("etag"))
        # A recheck (``expect``: the checkpoint seen): a no-op if the manifest moved on meanwhile.
        resume = Continuation(summary["manifest_id"], vendor, ref, expect=int(summary.get("checkpoint") or 0))
        self.sqs.send_message(QueueUrl=url, MessageBody=resume.encode())
        return True

    def _import_messages_left(self) -> int:
        """Messages the import queue and its DLQ still hold (visible, in flight, delayed)."""
        total = 0
        for url in (self.import_queue_url, self.import_dlq_url):
            if not url:
                continue
            got = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(QUEUE_COUNT_ATTRIBUTES))
            total += sum(int(got["Attributes"].get(name, 0)) for name in QUEUE_COUNT_ATTRIBUTES)
        return total
