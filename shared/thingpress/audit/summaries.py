"""Manifest summaries: the summary row and its shards, read as one (``merged``, ``get_summary``), and
what moves it: the start, the provider's checkpoints (``Progress``), the staged reel, a refusal, the
pause note, completion (with its event), the results files' note and the watchdog's STALLED mark
(``Summaries``, a part of ``AuditTable``). ``thingpress.audit`` says why the importer counts on shards ("No hot item") and
how the counts add up ("Counting, exactly once")."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from thingpress import events
from thingpress.audit.chain import Handle
from thingpress.audit.keys import (
    SHARD_PREFIX,
    STARTS_PK,
    SUMMARY_SK,
    TTL_ATTRIBUTE,
    from_item,
    manifest_pk,
    now_iso,
    shard_sk,
    to_item,
)
from thingpress.audit.states import COMPLETE, PARSING, QUEUED, RECEIVED, REFUSED, STALLED, UNFINISHED_STATES
from thingpress.audit.writes import TableWrites

#: shard items per manifest (``thingpress.audit``, "No hot item").
SUMMARY_SHARDS = 16
#: the summary counters the importer moves, on a shard; a summary as read adds the shards to them.
SHARDED_COUNTERS = ("imported", "already_present", "rejected", "failed", "outstanding")
#: a start row's life (its ``expires_at``): it is read for ``STARTS_HORIZON_SECONDS`` only.
STARTS_TTL_SECONDS = 86400

logger = Logger(service="thingpress")


def merged(summary: dict[str, Any], shards: list[dict[str, Any]]) -> dict[str, Any]:
    """A manifest's summary as read: the summary item with its shards' counters added
    (``SHARDED_COUNTERS``) and the latest ``updated_at`` of them all."""
    view = dict(summary)
    for counter in SHARDED_COUNTERS:
        view[counter] = int(summary.get(counter) or 0) + sum(int(s.get(counter) or 0) for s in shards)
    view["updated_at"] = max([summary.get("updated_at") or "", *(s.get("updated_at") or "" for s in shards)])
    return view


@dataclass(frozen=True, slots=True)
class Progress:
    """What the provider parsed since its last checkpoint."""

    entries: int = 0
    duplicates: int = 0
    queued: int = 0
    rejected: int = 0
    #: of ``rejected``: entries refused because they carry no device certificate (``Tally.note``).
    no_certificates: int = 0


class Summaries(TableWrites):
    """The summary rows of ``AuditTable`` (module docstring)."""

    def start_manifest(self, mid: str, *, vendor: str, bucket: str, key: str, version: str | None,
                       etag: str | None, size: int | None, now: datetime | None = None,
                       environment: str | None = None) -> dict[str, Any]:
        """Create the summary row if new; return the summary as stored (new or existing).

        An unfinished manifest's start is noted too (``STARTS_PK``, after the summary, before this
        invocation reads the manifests in flight): a redelivery notes it again, the same row.
        """
        stamp = now_iso(now)
        values = {
            "pk": manifest_pk(mid), "sk": SUMMARY_SK, "manifest_id": mid, "vendor": vendor, "environment": environment,
            "bucket": bucket, "key": key, "version_id": version, "etag": etag, "size": size,
            "state": RECEIVED, "entries": 0, "duplicates": 0, "queued": 0, "rejected": 0,
            "imported": 0, "already_present": 0, "failed": 0, "outstanding": 0, "checkpoint": 0,
            "parse_done": False, "chain": 0, "started_at": stamp, "updated_at": stamp,
            TTL_ATTRIBUTE: self._expires(),
        }
        try:
            self._retrying(lambda: self.client.put_item(TableName=self.table, Item=to_item(values),
                                                        ConditionExpression="attribute_not_exists(pk)"))
            summary = values
        except self.client.exceptions.ConditionalCheckFailedException:
            summary = self.get_summary(mid) or values
        if summary.get("state") in UNFINISHED_STATES:
            start = {"pk": STARTS_PK, "sk": f"{summary['started_at']}#{mid}", "manifest_id": mid,
                     "started_at": summary["started_at"], TTL_ATTRIBUTE: int(time.time()) + STARTS_TTL_SECONDS}
            self._retrying(lambda: self.client.put_item(TableName=self.table, Item=to_item(start)))
        return summary

    def get_summary(self, mid: str) -> dict[str, Any] | None:
        """The manifest's summary as read: its item plus its shards' counters (:func:`merged`)."""
        summary, shards = self.summary_items(mid)
        return None if summary is None else merged(summary, shards)

    def summary_items(self, mid: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The summary item and its shard items as stored: one strongly consistent Query."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :summary",
            "ExpressionAttributeValues": to_item({":pk": manifest_pk(mid), ":first": SHARD_PREFIX,
                                                  ":summary": SUMMARY_SK}),
        }
        summary: dict[str, Any] | None = None
        shards: list[dict[str, Any]] = []
        while True:
            page = self.client.query(**kwargs)
            for item in page.get("Items", []):
                row = from_item(item)
                if row["sk"] == SUMMARY_SK:
                    summary = row
                else:
                    shards.append(row)
            if "LastEvaluatedKey" not in page:
                return summary, shards
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def checkpoint(self, mid: str, position: int, progress: Progress, *, state: str = PARSING,
                   parse_done: bool = False, sha256: str | None = None, note: str | None = None,
                   previous: int | None = None, now: datetime | None = None,
                   cursor: dict[str, int] | None = None, handle: Handle | None = None) -> bool:
        """Commit provider progress up to ``position``. False if another invocation is ahead.

        The write is recognised as applied even when its response was lost and the
        SDK's automatic retry then failed the condition: each call writes a fresh
        ``commit_token`` and asks for the old item on a condition failure
        (``ReturnValuesOnConditionCheckFailure=ALL_OLD``); a stored token equal to
        this call's means the first attempt succeeded.

        ``previous`` (optional, recommended) is the checkpoint this progress was
        counted from: the commit then succeeds only if the stored checkpoint is still
        exactly that and parsing is not finished, so two invocations racing on one
        manifest can never both add the same stretch. ``note`` (optional) is a
        one-line remark kept on the summary, e.g. "signed manifest holds no device
        certificates: ... nothing to import". ``cursor`` (optional, ``Cursor.as_item``)
        is where reading resumes after ``position``. ``handle`` (optional) is the message this
        invocation runs on (``thingpress.provider``, "One live chain"): the commit then succeeds
        only if no other handle has taken the manifest over since.
        """
        names = {"#state": "state"}
        # Marks this very write: if its response is lost and the SDK's retry then fails the
        # condition (the first attempt moved the checkpoint), the old item returned with the
        # failure carries this token, and the commit is known to have been applied.
        token = uuid.uuid4().hex
        values: dict[str, Any] = {
            ":pos": position, ":e": progress.entries, ":d": progress.duplicates, ":q": progress.queued,
            ":r": progress.rejected, ":state": state, ":now": now_iso(now), ":done": parse_done,
            ":token": token,
        }
        sets = ["checkpoint = :pos", "#state = :state", "updated_at = :now", "parse_done = :done",
                "commit_token = :token"]
        if sha256:
            sets.append("sha256 = :sha")
            values[":sha"] = sha256
        if note:
            sets.append("note = :note")
            values[":note"] = note
        if cursor is not None:
            sets.append("#cursor = :cursor")
            names["#cursor"] = "cursor"
            values[":cursor"] = cursor
        adds = "entries :e, duplicates :d, queued :q, rejected :r, outstanding :q"
        if progress.no_certificates:
            adds += ", no_certificates :nc"
            values[":nc"] = progress.no_certificates
        if parse_done:
            sets.append("parsed_at = :now")
        if previous is not None:
            # Exactly from where this invocation started counting, never after the end.
            condition = "attribute_exists(pk) AND checkpoint = :prev AND parse_done = :false AND " + (
                "checkpoint <= :pos" if parse_done else "checkpoint < :pos")
            values.update({":prev": previous, ":false": False})
        elif parse_done:
            # Strictly forward, except a final commit at the same position (nothing new).
            condition = "attribute_exists(pk) AND (checkpoint < :pos OR (checkpoint = :pos AND :done = :true))"
            values[":true"] = True
        else:
            condition = "attribute_exists(pk) AND checkpoint < :pos"
        if handle is not None:
            owned, owned_values = handle.condition()
            condition += " AND " + owned
            values.update(owned_values)
        try:
            self._retrying(lambda: self.client.update_item(
                TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
                UpdateExpression="SET " + ", ".join(sets)
                + " ADD " + adds,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ))
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            stored = from_item(exc.response.get("Item") or {})
            if stored.get("commit_token") != token:
                return False
            # Our own write, applied by an earlier attempt of this call (response lost, retried).
        if parse_done:
            self.try_complete(mid, now=now)
        return True

    def set_staged(self, mid: str, key: str, *, size: int, sha256: str) -> None:
        """Record a manifest's staged object (an Infineon reel extracted once) and the reel's SHA-256.
        Idempotent: the same reel always stages to the same object."""
        self._retrying(lambda: self.client.update_item(
            TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
            UpdateExpression="SET staged = :k, staged_size = :n, reel_sha256 = :s",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_item({":k": key, ":n": size, ":s": sha256}),
        ))

    def refuse_manifest(self, mid: str, reason: str, now: datetime | None = None) -> None:
        """Mark a whole file refused (not a manifest, corrupt, empty ...): terminal."""
        self._retrying(lambda: self.client.update_item(
            TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
            UpdateExpression="SET #state = :s, reason = :r, completed_at = :now, updated_at = :now, parse_done = :t",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_item({":s": REFUSED, ":r": reason, ":now": now_iso(now), ":t": True}),
        ))

    def try_complete(self, mid: str, now: datetime | None = None) -> bool:
        """Mark the manifest COMPLETE if parsing is done and nothing is outstanding.

        Reads the summary with its shards (one consistent Query); once parsing is done
        ``queued`` is final and outcomes only add, so an ``outstanding`` of 0 read then
        stays 0. True for the one caller whose conditional update did it; that caller, and
        only it, puts the completion event (:mod:`thingpress.events`: at most once
        per manifest, the outcome kept on the summary as ``completion_event``).
        """
        summary, shards = self.summary_items(mid)
        if summary is None:
            return False
        seen = merged(summary, shards)
        if not seen.get("parse_done") or seen["outstanding"] != 0 or seen.get("state") in (COMPLETE, REFUSED):
            return False
        sets = "SET #state = :c, completed_at = :now, updated_at = :now"
        values: dict[str, Any] = {":c": COMPLETE, ":now": now_iso(now), ":t": True, ":refused": REFUSED}
        if self.announcer is not None:
            sets += ", completion_event = :pending"
            values[":pending"] = events.PENDING
        try:
            answer = self._retrying(lambda: self.client.update_item(
                TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
                UpdateExpression=sets,
                ConditionExpression="parse_done = :t AND #state <> :c AND #state <> :refused",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=to_item(values),
                ReturnValues="ALL_NEW",
            ))
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        if self.announcer is not None:
            self._announce(merged(from_item(answer["Attributes"]), shards))
        return True

    def _announce(self, summary: dict[str, Any]) -> None:
        """Put the completion event for ``summary`` once and record on it what happened (never raises)."""
        mid = summary["manifest_id"]
        try:
            event_id = self.announcer.publish(summary)  # type: ignore[union-attr]
        except (BotoCoreError, ClientError, events.EventRefused) as exc:
            logger.error("completion event not sent; it is not retried (see thingpress.events)",
                         extra={"manifest_id": mid, "error": str(exc)})
            sets, values = "completion_event = :s, completion_event_error = :e", {":s": events.FAILED,
                                                                                  ":e": str(exc)[:500]}
        else:
            sets, values = "completion_event = :s, completion_event_id = :e", {":s": events.SENT, ":e": event_id}
        self._retrying(lambda: self.client.update_item(
            TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
            UpdateExpression="SET " + sets, ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_item(values)))

    def note_results(self, mid: str, results: dict[str, Any]) -> bool:
        """Record on a COMPLETE summary where its results files are (``thingpress.results``): ``results`` is
        ``{"results_key", "errors_key", "lines", "errors"}``. Once: False (nothing written) when the summary
        names its results already, or is not COMPLETE."""
        return self._update_summary(mid, "SET results = :r", "#state = :c AND attribute_not_exists(results)",
                                    {":r": results, ":c": COMPLETE}, {"#state": "state"})

    def note_paused(self, mid: str, *, checkpoint: int, seconds: int, now: datetime | None = None,
                    handle: Handle | None = None) -> bool:
        """A provider paused the manifest at ``checkpoint`` for ``seconds`` (the import window is full).

        Moves ``updated_at`` (a paused manifest is alive: the watchdog must not take a
        run of pauses without progress for a stall and resume it a second time) and
        records ``paused_until``. Conditional on the checkpoint still being
        ``checkpoint`` and parsing not finished (and, with ``handle``, on no other handle having
        taken over): False if another invocation moved on.
        """
        stamp = now or datetime.now(UTC)
        until = datetime.fromtimestamp(stamp.timestamp() + seconds, UTC)
        condition = "attribute_exists(pk) AND checkpoint = :c AND parse_done = :false"
        values: dict[str, Any] = {":now": now_iso(stamp), ":until": now_iso(until), ":c": checkpoint, ":false": False}
        if handle is not None:
            owned, owned_values = handle.condition()
            condition += " AND " + owned
            values.update(owned_values)
        return self._update_summary(mid, "SET updated_at = :now, paused_until = :until", condition, values)

    def mark_stalled(self, mid: str, reason: str, *, seen: dict[str, Any], seen_shards: list[dict[str, Any]],
                     now: datetime | None = None) -> bool:
        """Mark a parsed manifest STALLED with ``reason``; False if it moved meanwhile.

        ``seen`` and ``seen_shards`` are the summary and shard items the caller judged
        (:meth:`summary_items`). One transaction, conditional on all of them being exactly
        as read: the summary still in the state read (QUEUED, or STALLED for a manifest the
        watchdog looked at again), parsed, with the same ``updated_at`` and ``redriven_at``
        (:meth:`note_redrive`); each shard with the same ``updated_at`` and ``outstanding`` (an
        outcome within the same second moves ``outstanding``), and no shard that was not there.
        So of two watchdogs racing, one marks it; and an outcome recorded, or a redrive noted,
        after the judgement wins. ``updated_at`` is left alone (no progress was made).
        """
        if seen.get("state") not in (QUEUED, STALLED):
            return False
        values: dict[str, Any] = {":stalled": STALLED, ":r": reason, ":now": now_iso(now), ":read": seen["state"],
                                  ":t": True, ":seen": seen["updated_at"]}
        condition = "#state = :read AND parse_done = :t AND updated_at = :seen AND "
        if seen.get("redriven_at"):
            condition += "redriven_at = :redriven"
            values[":redriven"] = seen["redriven_at"]
        else:
            condition += "attribute_not_exists(redriven_at)"
        pk = to_item({"pk": manifest_pk(mid)})
        return self._transact([{"Update": {
            "TableName": self.table, "Key": {**pk, **to_item({"sk": SUMMARY_SK})},
            "UpdateExpression": "SET #state = :stalled, reason = :r, stalled_at = :now",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": to_item(values),
        }}, *self._shards_unchanged(mid, seen_shards)])

    def note_redrive(self, mid: str, now: datetime | None = None) -> bool:
        """Note on a STALLED manifest that the import dead-letter queue was redriven (``redriven_at``),
        so that the watchdog looks at it again once that has been idle for its threshold: the redriven
        imports may have recorded rows whose count was lost, which only a recount finds
        (``thingpress.watchdog``). False (nothing written) when the manifest is not STALLED."""
        return self._update_summary(mid, "SET redriven_at = :now", "#state = :stalled",
                                    {":now": now_iso(now), ":stalled": STALLED}, names={"#state": "state"})

    def _shards_unchanged(self, mid: str, seen_shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A transaction's checks, shard 0 first, that every shard of ``mid`` is as read: each with the same
        ``updated_at`` and ``outstanding`` (an outcome within the same second moves ``outstanding``), and
        none that was not there."""
        pk = to_item({"pk": manifest_pk(mid)})
        checks: list[dict[str, Any]] = []
        by_sk = {row["sk"]: row for row in seen_shards}
        for shard in range(SUMMARY_SHARDS):
            sk = shard_sk(shard)
            check: dict[str, Any] = {"TableName": self.table, "Key": {**pk, **to_item({"sk": sk})}}
            row = by_sk.get(sk)
            if row is None:
                check["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                check["ConditionExpression"] = "updated_at = :seen_at AND outstanding = :seen_outstanding"
                check["ExpressionAttributeValues"] = to_item({":seen_at": row.get("updated_at"),
                                                              ":seen_outstanding": int(row.get("outstanding") or 0)})
            checks.append({"ConditionCheck": check})
        return checks
