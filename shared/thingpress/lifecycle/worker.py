"""The lifecycle function's work: one batch message in, its certificates' statuses (and thing attributes)
set, its rows recorded once, and the job's results files written when its last batch is in.

Per certificate an entry names (``thingpress.lifecycle.resolve``), what IoT holds decides
(``DescribeCertificate``, read just before):

* already at the status asked: nothing is called; the row records the outcome with
  ``changed`` false (a resumed or repeated job changes nothing twice);
* REVOKED, asked for another status: refused (:data:`~thingpress.lifecycle.jobs.REVOKED_IS_FINAL`);
* ACTIVE or INACTIVE: ``UpdateCertificate`` (idempotent: "This operation is idempotent",
  https://docs.aws.amazon.com/iot/latest/apireference/API_UpdateCertificate.html);
* on activation with attributes: first the thing's attributes, ``UpdateThing`` with ``merge``
  (https://docs.aws.amazon.com/iot/latest/apireference/API_UpdateThing.html), refused when the thing
  would hold more than its type allows (``thingpress.attributes``): a certificate is activated only
  with the factory's facts on its thing.

Every IoT call goes through the importer's throttle (``thingpress.throttle``: token buckets,
backoff, the invocation's deadline). An AWS refusal of one certificate is its FAILED row; a
transient error or the deadline raises, and SQS delivers the message again.

Without ``apply`` (the commands' dry run) the same reads are made, nothing is changed or written,
and :meth:`LifecycleWorker.rows` says what would be recorded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from thingpress.attributes import attribute_limit, settable_problem
from thingpress.lifecycle.jobs import (
    ACTIVATE,
    ACTIVE,
    ERROR_OUTCOMES,
    FAILED,
    INACTIVE,
    JOB_COMPLETE,
    OUTCOME_OF,
    REFUSED,
    REVOKED,
    REVOKED_IS_FINAL,
    UNKNOWN,
    BatchMessage,
    Entry,
    Request,
    job_results_keys,
    row_sk,
)
from thingpress.lifecycle.resolve import Resolver, Target, Unresolved
from thingpress.lifecycle.store import JobTable
from thingpress.results.writer import StreamedObject
from thingpress.throttle import Throttle, error_code, is_transient

#: every results line's fields, in order.
LINE_FIELDS = ("position", "entry", "thing_name", "certificate_id", "status", "previous_status",
               "certificate_status", "changed", "attributes", "reason", "detail", "manifest_id", "requested_by",
               "sender_id", "updated_at")


def result_line(row: Mapping[str, Any]) -> bytes:
    return (json.dumps({name: row.get(name) for name in LINE_FIELDS}, separators=(",", ":")) + "\n").encode()


class LifecycleWorker:
    """Runs a job's batches (``handle``) or says what they would do (``rows`` without ``apply``)."""

    def __init__(self, iot: Any, table: JobTable, resolver: Resolver, throttle: Throttle, *, s3: Any = None,
                 bucket: str = "", apply: bool = True):
        self.iot, self.table, self.resolver, self.throttle = iot, table, resolver, throttle
        self.s3, self.bucket, self.apply = s3, bucket, apply

    # -- a batch --------------------------------------------------------------------

    def handle(self, body: str, *, sender_id: str | None = None, sent_at: float | None = None,
               deadline: float | None = None, now: datetime | None = None) -> dict[str, Any]:
        """Do one batch message (once), then complete the job if it was the last; the job's summary.

        ``sent_at``: when the message was sent (epoch seconds, SQS's ``SentTimestamp``), see :meth:`rows`.
        """
        message = BatchMessage.decode(body)
        if self.table.get_job(message.job_id) is None:
            raise ValueError(f"batch {message.batch} of job {message.job_id}: no such job in the audit table")
        if not self.table.batch_done(message.job_id, message.batch):
            rows = self.rows(message, sent_at=sent_at, deadline=deadline)
            if sender_id:
                rows = [{**row, "sender_id": sender_id} for row in rows]
            self.table.record_batch(message.job_id, message.batch, rows, entries=len(message.entries), now=now)
        return self.finish(message.job_id, now=now)

    def rows(self, message: BatchMessage, *, sent_at: float | None = None,
             deadline: float | None = None) -> list[dict[str, Any]]:
        """The rows of a batch: one per certificate each entry names, one for an entry naming none.

        With ``sent_at``, an entry resolved through the eventually consistent ``by_thing`` index (any but a
        manifest's) is resolved no sooner than the index holds what was written before then
        (:meth:`~thingpress.lifecycle.resolve.Resolver.settle`): a thing imported a moment before the
        request is found, never UNKNOWN.
        """
        if sent_at is not None and any(not entry.manifest_id for entry in message.entries):
            self.resolver.settle(sent_at)
        return [row for entry in message.entries for row in self.entry_rows(message.request, entry, deadline)]

    def entry_rows(self, request: Request, entry: Entry, deadline: float | None = None) -> list[dict[str, Any]]:
        base = {"position": entry.position, "entry": entry.text, "action": request.action, "target": request.target,
                "reason": request.reason, "requested_by": request.requested_by}
        resolved = self.resolver.resolve(entry)
        if isinstance(resolved, Unresolved):
            return [{**base, "sk": row_sk(entry.position, None), "status": UNKNOWN, "detail": resolved.reason}]
        return [{**base, "sk": row_sk(entry.position, t.certificate_id), "certificate_id": t.certificate_id,
                 "thing_name": t.thing_name, "manifest_id": t.manifest_id, "vendor": t.vendor, "resolved_by": t.how,
                 **self._certificate(request, entry, t, deadline)} for t in resolved]

    def _certificate(self, request: Request, entry: Entry, target: Target, deadline: float | None) -> dict[str, Any]:
        """What happens to one certificate: the row's outcome fields."""
        try:
            current = self._call("DescribeCertificate", self.iot.describe_certificate, deadline,
                                 certificateId=target.certificate_id)["certificateDescription"]["status"]
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            return {"status": REFUSED, "detail": "the certificate is no longer in AWS IoT"}
        out: dict[str, Any] = {"previous_status": current, "certificate_status": current, "changed": False}
        if current == REVOKED and request.target != REVOKED:
            return {**out, "status": REFUSED, "detail": REVOKED_IS_FINAL}
        if current not in (ACTIVE, INACTIVE, REVOKED):
            return {**out, "status": REFUSED, "detail": f"the certificate is {current}: thingpress changes only "
                                                         "ACTIVE and INACTIVE certificates"}
        try:
            if request.action == ACTIVATE and entry.attributes:
                refused = self._attributes(target, entry.attributes, deadline)
                if refused:
                    return {**out, "status": REFUSED, "detail": refused}
                out["attributes"] = dict(entry.attributes)
            if current != request.target:
                if self.apply:
                    self._call("UpdateCertificate", self.iot.update_certificate, deadline,
                               certificateId=target.certificate_id, newStatus=request.target)
                out.update(certificate_status=request.target, changed=True)
        except ClientError as exc:
            if is_transient(exc):
                raise
            message = exc.response.get("Error", {}).get("Message", "")
            return {**out, "status": FAILED, "detail": f"{error_code(exc)}: {message}"}
        return {**out, "status": OUTCOME_OF[request.target]}

    def _attributes(self, target: Target, attributes: Mapping[str, str], deadline: float | None) -> str | None:
        """Set ``attributes`` on the certificate's thing (merged); why not, or None."""
        for name, value in attributes.items():
            problem = settable_problem(name, value)
            if problem:
                return problem
        if not target.thing_name:
            return "the certificate has no thing to hold its attributes"
        thing = self._call("DescribeThing", self.iot.describe_thing, deadline, thingName=target.thing_name)
        limit = attribute_limit(bool(thing.get("thingTypeName")))
        after = {**(thing.get("attributes") or {}), **attributes}
        if len(after) > limit:
            kind = "with" if thing.get("thingTypeName") else "without"
            return (f"thing {target.thing_name} would hold {len(after)} attributes; a thing {kind} a thing type "
                    f"holds at most {limit} (AWS IoT developer guide, \"Thing types\")")
        if self.apply and any((thing.get("attributes") or {}).get(k) != v for k, v in attributes.items()):
            self._call("UpdateThing", self.iot.update_thing, deadline, thingName=target.thing_name,
                       attributePayload={"attributes": dict(attributes), "merge": True})
        return None

    def _call(self, api: str, fn: Any, deadline: float | None, **kwargs: Any) -> Any:
        return self.throttle.call(api, fn, deadline=deadline, **kwargs)

    # -- the job's end ------------------------------------------------------------------

    def finish(self, job_id: str, now: datetime | None = None) -> dict[str, Any]:
        """Once every entry is counted: write the job's results files (once: ``StreamedObject``) and
        complete it. The job's summary as it is then."""
        job = self.table.get_job(job_id) or {}
        if job.get("state") == JOB_COMPLETE or job.get("entries_done", 0) < job.get("entries", 0):
            return job
        keys = job_results_keys(job_id)
        results = StreamedObject(self.s3, self.bucket, keys["results_key"])
        errors = StreamedObject(self.s3, self.bucket, keys["errors_key"])
        try:
            for row in self.table.iter_rows(job_id, consistent=True):
                line = result_line(row)
                results.write(line)
                if row.get("status") in ERROR_OUTCOMES:
                    errors.write(line)
            results.finish()
            errors.finish()
        except BaseException:
            results.abort()
            errors.abort()
            raise
        self.table.complete_job(job_id, {**keys, "lines": results.lines, "errors": errors.lines},
                                now=now)
        return self.table.get_job(job_id) or job

