"""The watchdog: no manifest stays unfinished for ever without anyone noticing.

The scheduled watchdog function (``lambdas/watchdog``) runs :meth:`Watchdog.sweep`.
A sweep lists the manifests still in progress (``RECEIVED``, ``PARSING``,
``QUEUED``), read consistently. It acts on those whose last progress (the summary's
``updated_at``, moved by every provider checkpoint, importer count and backpressure
pause) is older than ``stall_after_seconds`` (twice the longer of the provider and
importer timeouts: no live invocation goes that long without a checkpoint, and a pause
is shorter than one timeout), as below. Counts lost between an importer's rows and
their count (``thingpress.audit``, "Counting, exactly once") are counted again
(``AuditTable.recount``) for a manifest with certificates outstanding whose shards have
had no count for ``stall_after_seconds`` and no row younger than that (no invocation
that wrote one is still running): an idle one, and also one alive only by its
backpressure pauses, whose lost counts would otherwise hold its room in the import
window for ever (the count of rows is a Query of them all, so only then). Then:

* **parse not finished** (``parse_done`` false): starts a new chain of provider
  invocations (``AuditTable.bump_chain``, conditional on the chain and checkpoint
  it read) and sends its continuation message (``thingpress.provider.queue_messages.Continuation``)
  to the vendor's manifest queue. The provider carries on from the stored
  checkpoint; every handle of an older chain (a continuation of a later sweep's
  predecessor, a message back from its visibility timeout) is stale from then on and
  acknowledged without work, so a manifest has at most one live chain however often
  it is resumed (``thingpress.provider``, "One live chain").
* **parsed, nothing outstanding, counters add up** but not COMPLETE (the last
  outcome's completion check was lost): completes it (``AuditTable.try_complete``).
* **parsed, counters do not add up, but the rows do**: the lost counts are added (conditional
  on the shards as read), and the manifest completes if that was all it lacked.
* **parsed, counters do not add up**: no outcome has come for ``stall_after_seconds``,
  so nothing alive is bringing the missing ones: their import messages are in the
  import dead-letter queue, were lost, or keep failing. The manifest is marked
  ``STALLED`` with a reason naming how many entries have no outcome and what the import
  queue and its DLQ hold (a conditional transaction over the summary and its shards: of
  two racing watchdogs one marks it, and progress made meanwhile wins). What other
  manifests have in the queues does not matter: a manifest is judged by its own
  progress. ``STALLED`` is not terminal: a DLQ redrive still turns the missing
  messages into outcome rows, and the outcome that makes the counters add up
  completes the manifest. A STALLED manifest no longer holds room in the import
  window (``thingpress.backpressure`` counts unfinished manifests only).

``COMPLETE`` and ``REFUSED`` manifests are never looked at. A ``STALLED`` one is looked at
again, as a parsed manifest is above, only once something happened to it since it was
marked and that has been idle for ``stall_after_seconds``: an outcome counted (its
``updated_at`` moved), or the import dead-letter queue redriven (``redriven_at``, noted by
``thingpress redrive``, ``AuditTable.note_redrive``). Then it completes, its lost counts
are counted (a redriven import that died between its rows and their count: without this,
nothing would ever count them) or it is marked STALLED again with what it lacks now (a new
``stalled_at``, so it is left alone until something happens to it again). A STALLED manifest
nothing happened to costs a sweep one consistent read (no Query of its rows).
A manifest the provider keeps failing on gets a new chain on every sweep; each
failing message ends in the manifest queue's DLQ, whose alarm makes the failure visible.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from thingpress.audit.keys import now_iso
from thingpress.audit.states import OUTCOME_COUNTERS
from thingpress.audit.summaries import merged
from thingpress.audit.table import AuditTable
from thingpress.provider.queue_messages import Continuation, ObjectRef

#: the watchdog's metrics (Powertools, namespace ``thingpress``); the stack's alarm watches it.
METRICS_SERVICE = "watchdog"
STALLED_METRIC = "ManifestsStalled"
RESUMED_METRIC = "ManifestsResumed"
#: SQS attributes that together count every message a queue still holds.
QUEUE_COUNT_ATTRIBUTES = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                          "ApproximateNumberOfMessagesDelayed")

logger = Logger(service="thingpress-watchdog")


@dataclass(slots=True)
class SweepResult:
    """What one sweep did: unfinished idle manifests examined (``checked``), STALLED ones looked at
    again (``looked_again``), resumed (continuation sent or completed), marked STALLED (again), and
    manifests whose lost counts it counted (``recounted``, any manifest, idle or paused)."""

    checked: int = 0
    resumed: list[str] = field(default_factory=list)
    stalled: list[str] = field(default_factory=list)
    recounted: list[str] = field(default_factory=list)
    looked_again: list[str] = field(default_factory=list)


def _iso(epoch: float) -> str:
    return now_iso(datetime.fromtimestamp(epoch, UTC))


def missing_outcomes(summary: dict[str, Any]) -> int:
    """Entries of a parsed manifest that have no outcome yet (0 when the counters add up)."""
    return int(summary.get("entries", 0)) - sum(int(summary.get(c, 0)) for c in OUTCOME_COUNTERS)


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
        """One pass over the unfinished manifests, then the STALLED ones to look at again (module docstring)."""
        result = SweepResult()
        now = self.clock()
        cutoff = _iso(now - self.stall_after_seconds)
        queues = functools.cache(self._import_queues)  # what the import queues hold: read once, if needed
        for summary in self.audit.unfinished_manifests():
            mid = summary["manifest_id"]
            outstanding = int(summary.get("outstanding", 0))
            if summary["updated_at"] >= cutoff:
                if summary.get("paused_until") and outstanding > 0:
                    self._recount(mid, cutoff, now, result)  # paused: room its lost counts hold may free it
                continue
            result.checked += 1
            if not summary.get("parse_done"):
                if outstanding > 0:
                    self._recount(mid, cutoff, now, result)
                if self._continue(summary):
                    result.resumed.append(mid)
                    logger.warning("manifest made no progress; continuation sent", extra={
                        "manifest_id": mid, "state": summary.get("state"), "checkpoint": summary.get("checkpoint"),
                        "last_progress": summary["updated_at"]})
                continue
            self._settle_parsed(summary, cutoff, now, result, queues)
        for summary in self._to_look_at_again(cutoff):
            result.looked_again.append(summary["manifest_id"])
            self._settle_parsed(summary, cutoff, now, result, queues)
        return result

    def _settle_parsed(self, summary: dict[str, Any], cutoff: str, now: float, result: SweepResult,
                       queues: Callable[[], str]) -> None:
        """An idle parsed manifest: completed, its lost counts counted, or marked STALLED (module docstring)."""
        mid = summary["manifest_id"]
        outstanding = int(summary.get("outstanding", 0))
        missing = missing_outcomes(summary)
        if missing == 0 and outstanding == 0:
            if self.audit.try_complete(mid):
                result.resumed.append(mid)
                logger.warning("manifest had every outcome but was not complete; completed",
                               extra={"manifest_id": mid})
            return
        seen, shards = self.audit.summary_items(mid)
        if seen is None or merged(seen, shards)["updated_at"] != summary["updated_at"]:
            return  # it moved since it was listed
        counted = self._recount(mid, cutoff, now, result, seen_shards=shards)
        if counted is None:
            return  # a row came lately, or a shard moved: alive after all
        if counted:
            if self.audit.try_complete(mid):
                result.resumed.append(mid)
            return
        reason = (f"parsed, but {missing} of {summary.get('entries', 0)} entries have no outcome "
                  f"(outstanding {outstanding}) and none came since {summary['updated_at']}: their import "
                  f"messages are in the import dead-letter queue (thingpress redrive), were lost, or keep "
                  f"failing; {queues()}")
        if self.audit.mark_stalled(mid, reason, seen=seen, seen_shards=shards,
                                   now=datetime.fromtimestamp(now, UTC)):
            result.stalled.append(mid)
            logger.error("manifest STALLED", extra={"manifest_id": mid, "reason": reason})

    def _to_look_at_again(self, cutoff: str) -> list[dict[str, Any]]:
        """The STALLED manifests that something happened to since they were marked (an outcome
        counted, a redrive noted) and that have been idle since ``cutoff`` (module docstring)."""
        looked_at = []
        for summary in self.audit.stalled_manifests():
            marked, redriven = summary.get("stalled_at") or "", summary.get("redriven_at") or ""
            happened = summary["updated_at"] > marked or (redriven and redriven >= marked)
            if happened and summary["updated_at"] < cutoff and redriven < cutoff:
                looked_at.append(summary)
        return looked_at

    def _recount(self, mid: str, cutoff: str, now: float, result: SweepResult, *,
                 seen_shards: list[dict[str, Any]] | None = None) -> int | None:
        """Count the rows of ``mid`` whose count was lost, if no count came since ``cutoff``
        (``AuditTable.recount``); how many (noted in ``result.recounted``), or None if it could not."""
        if seen_shards is None:
            seen, seen_shards = self.audit.summary_items(mid)
            if seen is None:
                return None
        if any((shard.get("updated_at") or "") >= cutoff for shard in seen_shards):
            return None  # its imports are counted lately
        counted = self.audit.recount(mid, seen_shards=seen_shards, idle_before=cutoff,
                                     now=datetime.fromtimestamp(now, UTC))
        if counted:
            result.recounted.append(mid)
            logger.warning("outcomes recorded but not counted; counted now", extra={
                "manifest_id": mid, "counted": counted})
        return counted

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
        handle = self.audit.bump_chain(summary["manifest_id"], seen=summary, link=uuid.uuid4().hex)
        if handle is None:
            return False  # it moved on since it was read: alive after all
        resume = Continuation(summary["manifest_id"], vendor, ref, handle)
        self.sqs.send_message(QueueUrl=url, MessageBody=resume.encode())
        return True

    def _import_queues(self) -> str:
        """What the import queue and its DLQ hold (visible, in flight, delayed), for a STALLED reason."""
        said = []
        for name, url in (("import queue", self.import_queue_url), ("import dead-letter queue", self.import_dlq_url)):
            if not url:
                continue
            got = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(QUEUE_COUNT_ATTRIBUTES))
            said.append(f"{name} holds {sum(int(got['Attributes'].get(n, 0)) for n in QUEUE_COUNT_ATTRIBUTES)}")
        return ", ".join(said) + " message(s), of any manifest" if said else "no import queue to look at"
