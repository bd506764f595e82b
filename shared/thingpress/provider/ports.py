"""The pure core's ports on AWS (``AwsPorts``): what ``thingpress.provider.core.run_chunk`` needs
from outside, adapted to the audit table, SQS and the Lambda deadline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from thingpress.attributes import device_attributes
from thingpress.audit import states
from thingpress.audit.chain import Handle
from thingpress.audit.claims import ClaimsUnsettled
from thingpress.audit.summaries import Progress
from thingpress.backpressure import Backpressure
from thingpress.messages import ImportMessage
from thingpress.provider.core import Commit
from thingpress.provider.deadline import Deadline
from thingpress.provider.failures import ProviderError
from thingpress.provider.sending import BatchSender, MessageTooLarge
from thingpress.provider.telemetry import metrics
from thingpress.records import Certificate
from thingpress.thing_names import ThingNameError

if TYPE_CHECKING:  # the provider builds its ports: imported for the annotation only
    from thingpress.provider.runtime import Provider


class AwsPorts:
    """``thingpress.provider.core.Ports`` for one chunk: claims and checkpoints in the audit table
    (``AuditTable``), sends with ``BatchSender``, the deadline from the Lambda context, and
    the backpressure seam ``room_for`` (the provider's ``window``; None: no limit)."""

    def __init__(self, provider: Provider, mid: str, summary: dict[str, Any], sender: BatchSender,
                 deadline: Deadline, pressure: Backpressure | None = None, *, started: datetime):
        self.provider = provider
        self.pressure = pressure
        self.mid = mid
        self.summary = summary
        self.sender = sender
        self.deadline = deadline
        self.finish: Callable[[], str] = lambda: ""
        self.sha256: str | None = None
        self._queued_at = summary["started_at"]
        #: the manifest's start: its claims expire a fixed time after it (``thingpress.audit.claims``).
        self.started = started
        #: position -> the import message ``prepare`` made (at most one claim batch at a time).
        self._prepared: dict[int, str] = {}

    def room_for(self, summary: dict[str, Any]) -> int | None:
        if self.pressure is not None:
            return self.pressure.room_for(summary)
        window = self.provider.window
        return None if window is None else window(summary)

    def claim(self, claims: list[tuple[str, int]]) -> dict[int, int]:
        try:
            return self.provider.audit.claim_certificates(self.mid, claims, started=self.started)
        except ClaimsUnsettled as exc:
            raise ProviderError(str(exc)) from None

    def prepare(self, entry: Certificate) -> str | None:
        vendor = self.provider.vendor
        try:
            # The thing's name: the one place (thingpress.thing_names) the template is applied.
            thing_name = self.provider.thing_names.render(vendor=vendor, name=entry.thing_name,
                                                          fingerprint=entry.fingerprint,
                                                          certificate_pem=entry.certificate_pem)
            body = ImportMessage(manifest_id=self.mid, vendor=vendor, position=entry.position,
                                 thing_name=thing_name, fingerprint=entry.fingerprint,
                                 certificate_pem=entry.certificate_pem, queued_at=self._queued_at,
                                 attributes=device_attributes(vendor, entry.details) or None).encode()
            BatchSender.check(str(entry.position), body)
        except (MessageTooLarge, ThingNameError) as exc:  # refused before it was claimed, buffered or sent
            return exc.reason
        self._prepared[entry.position] = body
        return None

    def send(self, entry: Certificate) -> None:
        self.sender.add(str(entry.position), self._prepared.pop(entry.position))

    def commit(self, commit: Commit) -> bool:
        audit_table = self.provider.audit
        self.sender.flush()
        if commit.stretch.refusals:
            audit_table.put_refusals(self.mid, self.provider.vendor, commit.stretch.refusals)
        progress = commit.stretch.progress()
        final: dict[str, Any] = {}
        if commit.final:
            self.sha256 = self.finish()
            final = {"state": states.QUEUED, "parse_done": True, "sha256": self.sha256, "note": commit.note}
        cursor = commit.cursor.as_item() if commit.cursor is not None else NO_CURSOR
        if not audit_table.checkpoint(self.mid, commit.position, progress, previous=commit.previous,
                                      cursor=cursor, handle=Handle.of(self.summary), **final):
            return False
        _emit(progress)
        return True

    def time_is_up(self) -> bool:
        return self.deadline.low()


#: the ``cursor`` a checkpoint stores when its entries came without one (a vendor with neither
#: ``read`` nor ``read_staged``): the next chunk re-reads from the top and skips to the
#: checkpoint, without claiming again (its claims are stored).
NO_CURSOR: dict[str, Any] = {"offset": None, "line": 0}


def _emit(progress: Progress) -> None:
    for name, value in (("CertificatesQueued", progress.queued), ("EntriesRefused", progress.rejected),
                        ("Duplicates", progress.duplicates)):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
