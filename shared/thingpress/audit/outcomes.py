"""Outcomes: a certificate's terminal outcome, recorded exactly once (``record_outcome``,
``record_outcomes``: one transaction per manifest, counted on a summary shard), a FAILED outcome
resolved by a later delivery (``resolve_failed``), the provider's refusal rows (``put_refusals``)
and unreadable import messages (``record_unreadable``): the ``Outcomes`` part of ``AuditTable``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from thingpress.audit.keys import (
    TTL_ATTRIBUTE,
    UNREADABLE_MANIFEST,
    certificate_sk,
    from_item,
    manifest_pk,
    now_iso,
    refusal_sk,
    shard_sk,
    to_item,
)
from thingpress.audit.states import COUNTER, FAILED, REJECTED, STATUSES
from thingpress.audit.summaries import SUMMARY_SHARDS, Summaries

#: certificate rows per outcome transaction (DynamoDB allows 100 items; one is the summary update).
MAX_TRANSACTION_ROWS = 99


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """A certificate's terminal outcome, to be written by :meth:`AuditTable.record_outcomes`."""

    manifest_id: str
    fingerprint: str
    status: str
    vendor: str
    position: int
    thing_name: str | None
    reason: str | None = None
    certificate_id: str | None = None
    attempts: int | None = None
    #: the environment whose importer wrote the row, and what its IoT calls created
    #: (see "Ownership" in thingpress.importer.results); None when no IoT call answered.
    environment: str | None = None
    certificate_registered: bool | None = None
    thing_created: bool | None = None


class Outcomes(Summaries):
    """The certificate outcomes and refusal rows of ``AuditTable`` (recording one may complete the
    manifest: ``Summaries.try_complete``)."""

    def get_outcome(self, mid: str, fingerprint: str) -> dict[str, Any] | None:
        got = self.client.get_item(TableName=self.table, ConsistentRead=True,
                                   Key=to_item({"pk": manifest_pk(mid), "sk": certificate_sk(fingerprint)}))
        return from_item(got["Item"]) if "Item" in got else None

    def record_outcome(self, mid: str, fingerprint: str, status: str, *, vendor: str, position: int,
                       thing_name: str | None, reason: str | None = None, certificate_id: str | None = None,
                       attempts: int | None = None, now: datetime | None = None, complete: bool = True,
                       environment: str | None = None, certificate_registered: bool | None = None,
                       thing_created: bool | None = None) -> bool:
        """Record a certificate's terminal outcome exactly once.

        Returns False (and changes nothing) when the certificate already has one.
        ``complete=False`` leaves :meth:`try_complete` to the caller (the importer
        calls it once per batch and manifest instead of once per certificate).
        """
        if status not in COUNTER:
            raise ValueError(f"unknown status {status!r}")
        record = OutcomeRecord(mid, fingerprint, status, vendor=vendor, position=position, thing_name=thing_name,
                               reason=reason, certificate_id=certificate_id, attempts=attempts,
                               environment=environment, certificate_registered=certificate_registered,
                               thing_created=thing_created)
        if not self._record_together(mid, [record], now_iso(now)):
            return False
        if complete:
            self.try_complete(mid, now=now)
        return True

    def record_outcomes(self, outcomes: list[OutcomeRecord], now: datetime | None = None) -> list[bool]:
        """Record many outcomes (a batch), each exactly once; one transaction per manifest.

        The transaction puts every certificate row under ``attribute_not_exists``
        and moves the summary counters once, by the batch's totals: one DynamoDB
        write and one summary update per batch instead of one per certificate,
        and ten times fewer writes contending for the summary item. If any row
        exists already (a duplicate copy, a DLQ redrive) the transaction is
        cancelled as a whole and those outcomes are recorded one by one
        (:meth:`record_outcome`). A certificate named twice is recorded once.
        Returns, per outcome and in order, whether it was recorded by this call.
        Completion is left to the caller (:meth:`try_complete`).
        """
        recorded = [False] * len(outcomes)
        groups: dict[str, list[int]] = {}
        seen: set[tuple[str, str]] = set()
        for index, outcome in enumerate(outcomes):
            if outcome.status not in COUNTER:
                raise ValueError(f"unknown status {outcome.status!r}")
            if (outcome.manifest_id, outcome.fingerprint) not in seen:
                seen.add((outcome.manifest_id, outcome.fingerprint))
                groups.setdefault(outcome.manifest_id, []).append(index)
        stamp = now_iso(now)
        for mid, indexes in groups.items():
            for start in range(0, len(indexes), MAX_TRANSACTION_ROWS):
                chunk = indexes[start:start + MAX_TRANSACTION_ROWS]
                rows = [outcomes[i] for i in chunk]
                if self._record_together(mid, rows, stamp):
                    for i in chunk:
                        recorded[i] = True
                    continue
                for i in chunk:
                    o = outcomes[i]
                    recorded[i] = self.record_outcome(
                        o.manifest_id, o.fingerprint, o.status, vendor=o.vendor, position=o.position,
                        thing_name=o.thing_name, reason=o.reason, certificate_id=o.certificate_id,
                        attempts=o.attempts, now=now, complete=False, environment=o.environment,
                        certificate_registered=o.certificate_registered, thing_created=o.thing_created)
        return recorded

    def _record_together(self, mid: str, rows: list[OutcomeRecord], stamp: str) -> bool:
        """One transaction for ``rows`` of one manifest, counted on a shard; False if a row
        existed (nothing written)."""
        counts: dict[str, int] = {}
        for row in rows:
            counts[COUNTER[row.status]] = counts.get(COUNTER[row.status], 0) + 1
        puts: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": to_item(self._outcome_row(row, stamp)),
                     "ConditionExpression": "attribute_not_exists(pk)"}}
            for row in rows
        ]
        return self._transact(lambda: [*puts, self._shard_update(mid, {**counts, "outstanding": -len(rows)}, stamp)])

    def _shard_update(self, mid: str, adds: dict[str, int], stamp: str) -> dict[str, Any]:
        """A transaction's update of one shard drawn at random: ADD ``adds`` (counter -> delta)."""
        return {"Update": {
            "TableName": self.table, "Key": to_item({"pk": manifest_pk(mid),
                                                     "sk": shard_sk(self._random.randrange(SUMMARY_SHARDS))}),
            "UpdateExpression": "ADD " + ", ".join(f"{c} :{c}" for c in sorted(adds)) + " SET updated_at = :now",
            "ExpressionAttributeValues": to_item({**{f":{c}": n for c, n in adds.items()}, ":now": stamp}),
        }}

    def _outcome_row(self, o: OutcomeRecord, stamp: str) -> dict[str, Any]:
        return {
            "pk": manifest_pk(o.manifest_id), "sk": certificate_sk(o.fingerprint), "manifest_id": o.manifest_id,
            "vendor": o.vendor, "position": o.position, "thing_name": o.thing_name, "fingerprint": o.fingerprint,
            "status": o.status, "reason": o.reason, "certificate_id": o.certificate_id, "attempts": o.attempts,
            "environment": o.environment, "certificate_registered": o.certificate_registered,
            "thing_created": o.thing_created, "updated_at": stamp, TTL_ATTRIBUTE: self._expires(),
        }

    def resolve_failed(self, mid: str, fingerprint: str, status: str, *, reason: str | None = None,
                       certificate_id: str | None = None, attempts: int | None = None,
                       previous_failure: str | None = None, now: datetime | None = None,
                       environment: str | None = None, certificate_registered: bool | None = None,
                       thing_created: bool | None = None) -> bool:
        """Replace a ``FAILED`` outcome with the outcome of a later delivery (a DLQ redrive).

        One transaction: the row changes only if it still says FAILED, and the
        summary moves one count from ``failed`` to the new status's counter, so the
        totals still add up. ``previous_failure`` (the FAILED row's reason) is kept
        on the row. Returns False (changes nothing) if the row is not FAILED.
        """
        if status not in COUNTER or status == FAILED:
            allowed = ", ".join(s for s in STATUSES if s != FAILED)
            raise ValueError(f"a FAILED outcome can only be resolved to {allowed}, not {status!r}")
        stamp = now_iso(now)
        sets = ["#status = :s", "updated_at = :now"]
        values: dict[str, Any] = {":s": status, ":now": stamp, ":failed": FAILED}
        names = {"#status": "status"}
        removes = []
        for name, value in (("reason", reason), ("certificate_id", certificate_id), ("attempts", attempts),
                            ("previous_failure", previous_failure), ("environment", environment),
                            ("certificate_registered", certificate_registered), ("thing_created", thing_created)):
            names[f"#{name}"] = name
            if value is None:
                removes.append(f"#{name}")
            else:
                sets.append(f"#{name} = :{name}")
                values[f":{name}"] = value
        row = {"Update": {"TableName": self.table,
                          "Key": to_item({"pk": manifest_pk(mid), "sk": certificate_sk(fingerprint)}),
                          "UpdateExpression": "SET " + ", ".join(sets)
                          + (" REMOVE " + ", ".join(removes) if removes else ""),
                          "ConditionExpression": "#status = :failed",
                          "ExpressionAttributeNames": names,
                          "ExpressionAttributeValues": to_item(values)}}
        return self._transact(lambda: [row, self._shard_update(mid, {COUNTER[status]: 1, "failed": -1}, stamp)])

    def put_refusals(self, mid: str, vendor: str, refusals: list[dict[str, Any]], now: datetime | None = None) -> None:
        """Write provider refusal rows (idempotent puts keyed by position).

        Each dict: ``position``, ``reason`` and optionally ``thing_name``, ``fingerprint``.
        They are counted by the next ``checkpoint``.
        """
        stamp = now_iso(now)
        requests = [
            {"PutRequest": {"Item": to_item({
                "pk": manifest_pk(mid), "sk": refusal_sk(r["position"]), "manifest_id": mid, "vendor": vendor,
                "position": r["position"], "status": REJECTED, "reason": r["reason"],
                "thing_name": r.get("thing_name"), "fingerprint": r.get("fingerprint"),
                "updated_at": stamp, TTL_ATTRIBUTE: self._expires(),
            })}}
            for r in refusals
        ]
        for start in range(0, len(requests), 25):
            pending = {self.table: requests[start:start + 25]}
            for attempt in range(8):
                out = self.client.batch_write_item(RequestItems=pending)
                pending = out.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 2.0))
            if pending:
                raise RuntimeError(f"audit table kept {len(pending[self.table])} refusal rows unprocessed")

    def record_unreadable(self, message_id: str, reason: str, now: datetime | None = None) -> None:
        """Record an import message that cannot even be attributed to a manifest."""
        stamp = now_iso(now)
        self.client.put_item(TableName=self.table, Item=to_item({
            "pk": manifest_pk(UNREADABLE_MANIFEST), "sk": f"X#{message_id}", "status": REJECTED,
            "reason": reason, "message_id": message_id, "updated_at": stamp, TTL_ATTRIBUTE: self._expires(),
        }))
