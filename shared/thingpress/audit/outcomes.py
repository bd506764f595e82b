"""Outcomes: a certificate's terminal outcome, recorded exactly once (``record_outcome``,
``record_outcomes``: conditional puts, counted on a summary shard once per manifest; ``recount``:
the watchdog's count of rows whose count was lost), a FAILED outcome
resolved by a later delivery (``resolve_failed``), the provider's refusal rows (``put_refusals``)
and unreadable import messages (``record_unreadable``): the ``Outcomes`` part of ``AuditTable``."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from thingpress.audit.keys import (
    CERTIFICATE_PREFIX,
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
from thingpress.audit.summaries import SUMMARY_SHARDS, Summaries, logger

#: the attribute naming the call that put a certificate row (``Outcomes._put_row``).
WRITE_TOKEN = "write_token"


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
        record = OutcomeRecord(mid, fingerprint, status, vendor=vendor, position=position, thing_name=thing_name,
                               reason=reason, certificate_id=certificate_id, attempts=attempts,
                               environment=environment, certificate_registered=certificate_registered,
                               thing_created=thing_created)
        recorded = self.record_outcomes([record], now=now)[0]
        if recorded and complete:
            self.try_complete(mid, now=now)
        return recorded

    def record_outcomes(self, outcomes: list[OutcomeRecord], now: datetime | None = None) -> list[bool]:
        """Record many outcomes (a batch), each exactly once, counted once per manifest.

        Each certificate row is put only if it does not exist (``_put_row``, ``WRITE_THREADS`` at
        a time); then the rows this call wrote are counted on a shard, one update per manifest
        (``_count``). A row that exists already (a duplicate copy, a DLQ redrive) is neither
        written nor counted. A certificate
        named twice is recorded once. Returns, per outcome and in order, whether this call
        recorded it. Completion is left to the caller (:meth:`try_complete`). Why rows and count
        are two writes, and what mends a count lost between them: ``thingpress.audit``, "Counting,
        exactly once".
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
        token = uuid.uuid4().hex
        for mid, indexes in groups.items():
            written = self._each(lambda i: self._put_row(outcomes[i], stamp, token), indexes)
            counts: dict[str, int] = {}
            for i, new in zip(indexes, written, strict=True):
                recorded[i] = new
                if new:
                    counts[COUNTER[outcomes[i].status]] = counts.get(COUNTER[outcomes[i].status], 0) + 1
            if counts:
                self._count(mid, counts, stamp)
        return recorded

    def _put_row(self, row: OutcomeRecord, stamp: str, token: str) -> bool:
        """Put ``row`` unless the certificate has a row; True if this call's write made it.

        The row carries ``token`` (``write_token``, one per call): when the put was applied and its
        answer lost, the SDK's retry fails the condition, and the row it returns with the failure
        (``ReturnValuesOnConditionCheckFailure=ALL_OLD``) names this call: the row is ours to count.
        """
        item = to_item({**self._outcome_row(row, stamp), WRITE_TOKEN: token})
        try:
            self._retrying(lambda: self.client.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD"))
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            return from_item(exc.response.get("Item") or {}).get(WRITE_TOKEN) == token
        return True

    def _count(self, mid: str, counts: dict[str, int], stamp: str) -> None:
        """ADD ``counts`` (counter -> rows) to a shard and take them from ``outstanding``: a transaction of
        one item, so that botocore's resend of it after a lost answer (same ``ClientRequestToken``)
        is not applied twice, as a plain UpdateItem would be."""
        self._transact(lambda: [self._shard_update(mid, {**counts, "outstanding": -sum(counts.values())}, stamp)])

    def _shard_update(self, mid: str, adds: dict[str, int], stamp: str, shard: int | None = None) -> dict[str, Any]:
        """A transaction's update of one shard (``shard``, else drawn at random): ADD ``adds`` (counter -> delta)."""
        return {"Update": {
            "TableName": self.table, "Key": to_item({"pk": manifest_pk(mid),
                                                     "sk": shard_sk(self._random.randrange(SUMMARY_SHARDS)
                                                                   if shard is None else shard)}),
            "UpdateExpression": "ADD " + ", ".join(f"{c} :{c}" for c in sorted(adds)) + " SET updated_at = :now",
            "ExpressionAttributeValues": to_item({**{f":{c}": n for c, n in adds.items()}, ":now": stamp}),
        }}

    def recount(self, mid: str, *, seen_shards: list[dict[str, Any]], idle_before: str,
                now: datetime | None = None) -> int | None:
        """Count the certificate rows whose count was lost (the watchdog's repair); how many, or None.

        A call of :meth:`record_outcomes` that dies between its rows and their count (its
        invocation killed, its shard update failing for good) leaves rows no counter has, and
        no later delivery counts them (it finds the rows). This reads every certificate row of
        ``mid`` (one consistent Query, paged), counts them by status (a rolled-back row by the
        status it was counted as), and adds to a shard what the shards (``seen_shards``, as
        :meth:`summary_items` read them) lack, taking it from ``outstanding``: one transaction,
        conditional on every shard still being as read. None (nothing written) when a row was
        written at ``idle_before`` or later (an invocation may still be counting it), when a
        shard moved, or when the shards count more than the rows (never written by this code:
        logged, left to the operator). 0 when nothing was missing.
        """
        rows: dict[str, int] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :c)",
            "ProjectionExpression": "#status, previous_status, updated_at",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": to_item({":pk": manifest_pk(mid), ":c": CERTIFICATE_PREFIX}),
        }
        while True:
            page = self.client.query(**kwargs)
            for item in page.get("Items", []):
                row = from_item(item)
                if (row.get("updated_at") or "") >= idle_before:
                    return None
                status = row.get("status") if row.get("status") in COUNTER else row.get("previous_status")
                if status in COUNTER:
                    rows[COUNTER[status]] = rows.get(COUNTER[status], 0) + 1
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        missing = {c: rows.get(c, 0) - sum(int(s.get(c) or 0) for s in seen_shards) for c in COUNTER.values()}
        if any(n < 0 for n in missing.values()):
            logger.error("the shards count more outcomes than there are rows; not changed",
                         extra={"manifest_id": mid, "rows": rows, "missing": missing})
            return None
        total = sum(missing.values())
        if total == 0:
            return 0
        adds = {**{c: n for c, n in missing.items() if n}, "outstanding": -total}
        first, *others = self._shards_unchanged(mid, seen_shards)  # shard 0's check goes on its update
        update = self._shard_update(mid, adds, now_iso(now), shard=0)["Update"]
        update["ConditionExpression"] = first["ConditionCheck"]["ConditionExpression"]
        update["ExpressionAttributeValues"].update(first["ConditionCheck"].get("ExpressionAttributeValues", {}))
        if not self._transact([{"Update": update}, *others]):
            return None
        return total

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
