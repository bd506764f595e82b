"""A lifecycle job in the audit table (``JobTable``): its summary, its batches' markers and its rows.

==========================  ====================  ===========================================
row                         pk                    sk
==========================  ====================  ===========================================
job summary                 ``L#<job id>``        ``#SUMMARY``
batch marker                ``L#<job id>``        ``B#<batch, 6 digits>``
outcome of an entry         ``L#<job id>``        ``E#<position, 9 digits>#<certificate id|->``
==========================  ====================  ===========================================

The summary carries ``state`` (``JOB_RUNNING``, ``JOB_COMPLETE``: the ``by_state`` index lists
jobs, never among manifests), the request (action, status, reason, who asked and when), the
entries and batches of the list, ``batches_sent`` (the command's progress in sending them: a
resumed submission sends the rest) and a counter per outcome. A row carries ``status`` (the
outcome; the job's results file lists them) and ``thing_name`` (``by_thing``: what
happened to a thing, its import and its lifecycle together), with who, when, why, the
certificate's status before and after, and the attributes set.

Once: a batch's rows, its marker and the summary's counters are one transaction whose marker
is put only if absent; a redelivered batch finds its marker and writes nothing (its IoT calls
were idempotent). The job is complete when every entry is counted (``entries_done``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from thingpress.audit.keys import INDEX_BY_STATE, SUMMARY_SK, TTL_ATTRIBUTE, from_item, now_iso, to_item
from thingpress.audit.table import AuditTable
from thingpress.lifecycle.jobs import (
    COUNTER,
    JOB_COMPLETE,
    JOB_RUNNING,
    JOB_STATES,
    MAX_CERTIFICATES_PER_ENTRY,
    Request,
    batch_sk,
    job_pk,
)

#: items of one batch's transaction besides its rows: the marker and the summary update.
BATCH_OVERHEAD = 2


class JobTable(AuditTable):
    """The audit table with the lifecycle jobs' rows."""

    def create_job(self, job_id: str, request: Request, *, entries: int, batches: int,
                   now: datetime | None = None) -> bool:
        """Put the job's summary; False (nothing written) when the job exists (a resubmission)."""
        stamp = now_iso(now)
        item = {"pk": job_pk(job_id), "sk": SUMMARY_SK, "job_id": job_id, "state": JOB_RUNNING,
                "action": request.action, "target": request.target, "reason": request.reason,
                "requested_by": request.requested_by, "created_at": stamp, "updated_at": stamp,
                "entries": entries, "batches": batches, "batches_sent": 0, "entries_done": 0,
                **{counter: 0 for counter in COUNTER.values()}, TTL_ATTRIBUTE: self._expires()}
        try:
            self.client.put_item(TableName=self.table, Item=to_item(item),
                                 ConditionExpression="attribute_not_exists(pk)")
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        got = self.client.get_item(TableName=self.table, ConsistentRead=True,
                                   Key=to_item({"pk": job_pk(job_id), "sk": SUMMARY_SK}))
        return from_item(got["Item"]) if "Item" in got else None

    def note_sent(self, job_id: str, batches_sent: int) -> None:
        """The command sent the job's batches up to ``batches_sent`` (it never goes back)."""
        self._retrying(lambda: self.client.update_item(
            TableName=self.table, Key=to_item({"pk": job_pk(job_id), "sk": SUMMARY_SK}),
            UpdateExpression="SET batches_sent = :n", ConditionExpression="batches_sent < :n",
            ExpressionAttributeValues=to_item({":n": batches_sent})))

    def batch_done(self, job_id: str, batch: int) -> bool:
        got = self.client.get_item(TableName=self.table, ConsistentRead=True, ProjectionExpression="pk",
                                   Key=to_item({"pk": job_pk(job_id), "sk": batch_sk(batch)}))
        return "Item" in got

    def record_batch(self, job_id: str, batch: int, rows: list[dict[str, Any]], *, entries: int,
                     now: datetime | None = None) -> bool:
        """A batch's rows (each with ``sk`` and ``status``), its marker and the summary's counts, in one
        transaction; False (nothing written) when the batch was recorded before."""
        if len(rows) > entries * MAX_CERTIFICATES_PER_ENTRY:
            raise ValueError(f"batch {batch}: {len(rows)} rows for {entries} entries")
        stamp = now_iso(now)
        pk, expires = job_pk(job_id), self._expires()
        counts: dict[str, int] = {}
        for row in rows:
            counts[COUNTER[row["status"]]] = counts.get(COUNTER[row["status"]], 0) + 1
        adds = {**counts, "entries_done": entries}
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(pk)",
                     "Item": to_item({"pk": pk, "sk": batch_sk(batch), "job_id": job_id, "rows": len(rows),
                                      "updated_at": stamp, TTL_ATTRIBUTE: expires})}},
            *({"Put": {"TableName": self.table,
                       "Item": to_item({**row, "pk": pk, "job_id": job_id, "updated_at": stamp,
                                        TTL_ATTRIBUTE: expires})}} for row in rows),
            {"Update": {"TableName": self.table, "Key": to_item({"pk": pk, "sk": SUMMARY_SK}),
                        # by name: some counters are DynamoDB reserved words (``unknown``)
                        "UpdateExpression": "ADD " + ", ".join(f"#{c} :{c}" for c in sorted(adds))
                        + " SET updated_at = :now",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {f"#{c}": c for c in adds},
                        "ExpressionAttributeValues": to_item({**{f":{c}": n for c, n in adds.items()},
                                                              ":now": stamp})}},
        ]
        return self._transact(items)

    def iter_rows(self, job_id: str, *, consistent: bool = False) -> Iterator[dict[str, Any]]:
        """The job's outcome rows in list order, one query page at a time."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "KeyConditionExpression": "pk = :pk AND begins_with(sk, :e)",
            "ExpressionAttributeValues": to_item({":pk": job_pk(job_id), ":e": "E#"}),
        }
        if consistent:
            kwargs["ConsistentRead"] = True
        yield from self._pages(kwargs)

    def complete_job(self, job_id: str, results: dict[str, Any], now: datetime | None = None) -> bool:
        """Mark the job complete with its results files' note, once every entry is counted; False when it
        is not done or was completed before (nothing written)."""
        try:
            self._retrying(lambda: self.client.update_item(
                TableName=self.table, Key=to_item({"pk": job_pk(job_id), "sk": SUMMARY_SK}),
                UpdateExpression="SET #state = :done, finished_at = :now, updated_at = :now, results = :r",
                ConditionExpression="#state = :running AND entries_done = entries",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=to_item({":done": JOB_COMPLETE, ":running": JOB_RUNNING,
                                                   ":now": now_iso(now), ":r": results})))
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def listed_jobs(self) -> list[dict[str, Any]]:
        """Every job's summary, newest first: a Query of the ``by_state`` index per job state (no scan)."""
        found: list[dict[str, Any]] = []
        for state in JOB_STATES:
            found.extend(self._pages({
                "TableName": self.table, "IndexName": INDEX_BY_STATE, "KeyConditionExpression": "#state = :s",
                "ExpressionAttributeNames": {"#state": "state"}, "ExpressionAttributeValues": to_item({":s": state}),
            }))
        return sorted(found, key=lambda r: r.get("created_at", ""), reverse=True)
