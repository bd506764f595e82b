"""Rollback marks and reconcile notes: what ``thingpress rollback``/``teardown`` undid, on the
certificate rows and the summary (``begin_rollback``, ``mark_rolled_back``, ``finish_rollback``),
and what ``thingpress reconcile --fix`` re-applied (``record_reconciled``): a part of ``AuditTable``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from thingpress.audit.keys import SUMMARY_SK, certificate_sk, manifest_pk, now_iso, to_item
from thingpress.audit.states import ROLLBACK_MODES, ROLLED_BACK
from thingpress.audit.writes import TableWrites


class Rollbacks(TableWrites):
    """The rollback marks and reconcile notes of ``AuditTable``."""

    def begin_rollback(self, mid: str, *, mode: str, reason: str, now: datetime | None = None) -> None:
        """Note on the summary that a rollback runs (resumable: a second call just refreshes the note)."""
        self._retrying(lambda: self.client.update_item(
            TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
            UpdateExpression="SET rollback_started_at = :now, rollback_mode = :m, rollback_reason = :r, "
                             "updated_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_item({":now": now_iso(now), ":m": mode, ":r": reason}),
        ))

    def mark_rolled_back(self, mid: str, fingerprint: str, *, mode: str, reason: str, actions: list[str],
                         kept: list[str] | None = None, now: datetime | None = None) -> bool:
        """Record that a certificate row was rolled back (``actions``: what was done, in order).

        The first time keeps the import outcome as ``previous_status``. ``kept``:
        what was left because something else still used it (``rollback_kept``; a
        later rollback takes the row up again). False (and nothing written) when
        the row says rolled back already, completely, with this mode or a stronger one.
        """
        stronger = list(ROLLBACK_MODES[ROLLBACK_MODES.index(mode):])
        values: dict[str, Any] = {":rb": ROLLED_BACK, ":now": now_iso(now), ":m": mode, ":r": reason,
                                  ":a": actions or ["nothing to undo"]}
        values.update({f":s{i}": m for i, m in enumerate(stronger)})
        done = " OR ".join(f"rollback_mode = :s{i}" for i in range(len(stronger)))
        update = ("SET previous_status = if_not_exists(previous_status, #status), #status = :rb, "
                  "rolled_back_at = :now, rollback_mode = :m, rollback_reason = :r, rollback_actions = :a, "
                  "updated_at = :now")
        if kept:
            update += ", rollback_kept = :k"
            values[":k"] = kept
        else:
            update += " REMOVE rollback_kept"
        try:
            self._retrying(lambda: self.client.update_item(
                TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": certificate_sk(fingerprint)}),
                UpdateExpression=update,
                ConditionExpression=(f"attribute_exists(pk) AND NOT (#status = :rb AND ({done}) "
                                     "AND attribute_not_exists(rollback_kept))"),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_item(values),
            ))
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def finish_rollback(self, mid: str, *, mode: str, reason: str, rolled_back: int,
                        now: datetime | None = None) -> None:
        """The summary says ROLLED_BACK, with when, why, how and how many rows (``previous_state`` kept)."""
        self._retrying(lambda: self.client.update_item(
            TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
            UpdateExpression="SET previous_state = if_not_exists(previous_state, #state), #state = :rb, "
                             "rolled_back_at = :now, rollback_mode = :m, rollback_reason = :r, rolled_back = :n, "
                             "updated_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_item({":rb": ROLLED_BACK, ":now": now_iso(now), ":m": mode, ":r": reason,
                                               ":n": rolled_back}),
        ))

    def record_reconciled(self, mid: str, fingerprint: str, fixed: list[str], now: datetime | None = None) -> None:
        """Note on a certificate row what ``thingpress reconcile --fix`` re-applied, and when.

        The outcome and the summary counters are not touched: the certificate's
        import outcome stands; ``reconciled`` lists the repairs (latest run).
        """
        self._retrying(lambda: self.client.update_item(
            TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": certificate_sk(fingerprint)}),
            UpdateExpression="SET reconciled = :f, reconciled_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_item({":f": fixed, ":now": now_iso(now)}),
        ))
