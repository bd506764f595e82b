"""``Importer``: one SQS delivery of an import message in, its outcome recorded in the audit table.

Pure logic over an injected IoT client and ``AuditTable``; the Lambda handler
(``lambdas/importer/import_handler.py``) only wires it to SQS, logs and metrics.
:meth:`Importer.handle` decodes the message, checks it (``rules``), makes the IoT
calls (``calls``, mixed in) and records the outcome (``results``, "Outcome rule").

Idempotency
-----------
The outcome is written by ``record_outcome``, a conditional transaction keyed by
manifest id and fingerprint (nothing random); when two deliveries race, the
second write changes nothing and the summary counters move once.

A delivery SQS counts as a redelivery (``ApproximateReceiveCount`` > 1) reads
``AuditTable.get_outcome(manifest, fingerprint)`` before any IoT call: a
certificate with a terminal outcome is done and nothing is called. A first
delivery skips that read (one DynamoDB request per certificate saved on the
normal path) and writes optimistically; if the write finds a row -- a duplicate
copy of the message, or an operator's DLQ redrive -- the row is read then. Either
way a ``FAILED`` row gives way: such a message can only come back by a DLQ
redrive, so it is imported again and ``resolve_failed`` replaces the FAILED row
(keeping the old error as ``previous_failure``) and moves the count from
``failed`` to the new status. Any other existing outcome stands (``redelivery``).

``complete=False`` on :meth:`Importer.handle` leaves the manifest's completion
check to the caller, which calls :meth:`Importer.complete` once per batch.

Batched writes: with a ``pending`` list, a first delivery's outcome is not
written at once but queued there, and :meth:`Importer.record_pending` writes the
whole batch in one transaction per manifest (``AuditTable.record_outcomes``),
then settles each outcome (recorded, or found to be a redelivery). The Lambda
handler does this at the end of each batch, before it answers SQS.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools import Logger

from thingpress.audit.outcomes import OutcomeRecord
from thingpress.audit.states import FAILED, REJECTED
from thingpress.audit.table import AuditTable
from thingpress.importer.calls import IotCalls, client_error_text, retryable
from thingpress.importer.results import Outcome, Owned, Pending, Rejected, RetryLater
from thingpress.importer.rules import INTERNAL_ERROR, CertificateArns, check_certificate
from thingpress.messages import ImportMessage, MessageError, decode
from thingpress.patterns import FINGERPRINT, MANIFEST_ID
from thingpress.settings import FunctionSettings
from thingpress.throttle import DeadlineExceeded, Throttle, ThrottleStats

logger = Logger(service="thingpress-importer")


class Importer(IotCalls):
    """Imports certificates one message at a time; safe to share between threads."""

    def __init__(self, iot: Any, audit: AuditTable, settings: FunctionSettings, *, arns: CertificateArns,
                 throttle: Throttle | None = None, start_margin: float = 5.0):
        self.iot = iot
        self.audit = audit
        self.settings = settings
        self.arns = arns
        self.throttle = throttle or Throttle.from_settings(settings)
        #: seconds a message needs at least before the deadline to be started.
        self.start_margin = start_margin

    # -- entry point -----------------------------------------------------------

    def handle(self, body: str, *, message_id: str, receive_count: int = 1,
               deadline: float | None = None, complete: bool = True,
               pending: list[Pending] | None = None) -> Outcome:
        """Process one SQS message body. Returns the outcome or raises ``RetryLater``.

        ``deadline`` is an instant on ``self.throttle.clock`` (None: no deadline).
        ``complete=False``: do not check the manifest for completion (see :meth:`complete`).
        ``pending``: queue a first delivery's outcome there instead of writing it
        (see :meth:`record_pending`); the returned outcome is settled by that call.
        """
        try:
            message = decode(body)
        except MessageError as exc:
            return self._reject_unreadable(body, message_id, f"invalid import message: {exc.reason}")

        mid, fp = message.manifest_id, message.fingerprint
        tally = ThrottleStats()
        final = receive_count >= self.settings.max_receive_count
        try:
            if self.throttle.remaining(deadline) < self.start_margin:
                raise DeadlineExceeded("start", self.start_margin, self.throttle.remaining(deadline))
            existing = self.audit.get_outcome(mid, fp) if receive_count > 1 else None
            if existing is not None and existing["status"] != FAILED:
                return self._existing(message, existing, tally)
            owned = Owned(first_delivery=receive_count == 1 and existing is None)
            try:
                check_certificate(message)
                status, reason, cert_id = self._import(message, tally, deadline, owned)
            except Rejected as exc:
                status, reason, cert_id = REJECTED, exc.reason, exc.certificate_id
            outcome = Outcome(mid, fp, status, reason, cert_id, thing_name=message.thing_name, tally=tally,
                              certificate_registered=owned.certificate, thing_created=owned.thing)
            record = OutcomeRecord(mid, fp, status, vendor=message.vendor, position=message.position,
                                   thing_name=message.thing_name, reason=reason, certificate_id=cert_id,
                                   attempts=receive_count, environment=self.settings.environment or None,
                                   certificate_registered=owned.certificate, thing_created=owned.thing)
            if existing is not None:  # redriven from the DLQ: the FAILED row gives way to the real outcome
                self._replace_failed(record, outcome, existing)
            elif pending is not None:
                pending.append(Pending(record, outcome, message_id))
            else:
                outcome.recorded = self.audit.record_outcome(
                    mid, fp, status, vendor=message.vendor, position=message.position,
                    thing_name=message.thing_name, reason=reason, certificate_id=cert_id, attempts=receive_count,
                    complete=complete, environment=record.environment,
                    certificate_registered=record.certificate_registered, thing_created=record.thing_created)
                if not outcome.recorded:
                    self._settle_unwritten(record, outcome)
            return outcome
        except Exception as exc:  # noqa: BLE001 -- AWS said no or is unreachable: retry, FAILED at the end
            if not retryable(exc):
                return self._internal_error(message, exc, receive_count, complete)
            reason = (f"invocation deadline: {exc}" if isinstance(exc, DeadlineExceeded)
                      else client_error_text(exc))
            recorded = False
            if final:
                recorded = self.audit.record_outcome(
                    mid, fp, FAILED, vendor=message.vendor, position=message.position,
                    thing_name=message.thing_name, reason=f"after {receive_count} deliveries: {reason}",
                    attempts=receive_count, complete=complete)
            raise RetryLater(reason, manifest_id=mid, fingerprint=fp, final=final, recorded=recorded, tally=tally,
                             deadline=isinstance(exc, DeadlineExceeded)) from exc

    def _internal_error(self, message: ImportMessage, exc: Exception, receive_count: int, complete: bool) -> Outcome:
        """A programming error (TypeError, KeyError ...): another delivery would fail the same way.

        Recorded at once as ``FAILED`` with the error as the reason (the row can still
        give way to a later DLQ redrive, see ``resolve_failed``); the message is done.
        """
        logger.exception("internal error importing a certificate; recorded FAILED, not retried",
                         extra={"manifest_id": message.manifest_id, "fingerprint": message.fingerprint})
        reason = f"{INTERNAL_ERROR}: {type(exc).__name__}: {exc}"
        recorded = self.audit.record_outcome(
            message.manifest_id, message.fingerprint, FAILED, vendor=message.vendor, position=message.position,
            thing_name=message.thing_name, reason=reason, attempts=receive_count, complete=complete)
        return Outcome(message.manifest_id, message.fingerprint, FAILED, reason, recorded=recorded,
                       redelivery=not recorded, thing_name=message.thing_name)

    @staticmethod
    def _existing(message: ImportMessage, row: dict[str, Any], tally: ThrottleStats) -> Outcome:
        """The outcome an earlier delivery recorded: this one changes nothing."""
        return Outcome(message.manifest_id, message.fingerprint, row["status"], row.get("reason"),
                       row.get("certificate_id"), redelivery=True, thing_name=message.thing_name, tally=tally)

    def _settle_unwritten(self, record: OutcomeRecord, outcome: Outcome) -> None:
        """The conditional write found a row (a duplicate copy, or a DLQ redrive): settle ``outcome`` by it."""
        existing = self.audit.get_outcome(record.manifest_id, record.fingerprint)
        if existing is None:
            return
        if existing["status"] == FAILED:
            self._replace_failed(record, outcome, existing)
        else:
            outcome.status, outcome.reason = existing["status"], existing.get("reason")
            outcome.certificate_id, outcome.redelivery = existing.get("certificate_id"), True

    def _replace_failed(self, record: OutcomeRecord, outcome: Outcome, failed: dict[str, Any]) -> None:
        outcome.recorded = self.audit.resolve_failed(
            record.manifest_id, record.fingerprint, record.status, reason=record.reason,
            certificate_id=record.certificate_id, attempts=record.attempts, previous_failure=failed.get("reason"),
            environment=record.environment, certificate_registered=record.certificate_registered,
            thing_created=record.thing_created)

    def record_pending(self, pending: list[Pending]) -> None:
        """Write queued outcomes (one transaction per manifest) and settle each one's ``Outcome``.

        An outcome whose row turned out to exist is settled as that row says
        (``redelivery``), or, if the row is ``FAILED``, replaces it
        (``resolve_failed``), exactly as :meth:`handle` does without ``pending``.
        """
        if not pending:
            return
        written = self.audit.record_outcomes([p.record for p in pending])
        for item, recorded in zip(pending, written, strict=True):
            item.outcome.recorded = recorded
            if not recorded:
                self._settle_unwritten(item.record, item.outcome)

    def complete(self, manifest_ids: Iterable[str]) -> None:
        """Mark each manifest COMPLETE if it is (after a batch handled with ``complete=False``)."""
        for mid in sorted(set(manifest_ids)):
            self.audit.try_complete(mid)

    # -- poison messages -----------------------------------------------------

    def _reject_unreadable(self, body: str, message_id: str, reason: str) -> Outcome:
        """Record a message that fails the schema: against its manifest when it names one that exists."""
        data: Any = None
        try:
            data = json.loads(body)
        except (ValueError, TypeError):
            pass
        if isinstance(data, dict):
            mid, fp = data.get("manifest_id"), data.get("fingerprint")
            if (isinstance(mid, str) and MANIFEST_ID.fullmatch(mid) and isinstance(fp, str) and FINGERPRINT.fullmatch(fp)
                    and self.audit.get_summary(mid) is not None):
                position = data.get("position")
                thing = data.get("thing_name")
                vendor = data.get("vendor")
                recorded = self.audit.record_outcome(
                    mid, fp, REJECTED, vendor=vendor if isinstance(vendor, str) else "",
                    position=position if isinstance(position, int) and not isinstance(position, bool) else 0,
                    thing_name=thing if isinstance(thing, str) else None, reason=reason)
                return Outcome(mid, fp, REJECTED, reason, recorded=recorded,
                               thing_name=thing if isinstance(thing, str) else None)
        # Cannot be attributed to a known manifest: keyed by the SQS message id (stable across redeliveries).
        self.audit.record_unreadable(message_id, reason)
        return Outcome(None, None, REJECTED, reason, recorded=True)
