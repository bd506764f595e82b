"""The audit table's client and how every write to it goes: ``TableWrites`` holds the client, the
table name and the retention, retries a write DynamoDB refuses for a transaction conflict
(``_retrying``, ``is_conflict``; ``thingpress.audit``, "No hot item"), and runs the conditional
summary updates and idempotent transactions the other parts of ``AuditTable`` are made of."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from thingpress.audit.keys import SUMMARY_SK, manifest_pk, to_item
from thingpress.events import CompletionEvents

#: single-item writes one call sends at once (claims, outcome rows): under botocore's default pool of
#: 10 connections; the client is thread-safe.
WRITE_THREADS = 8
#: attempts of a write that DynamoDB refuses for a transaction conflict; the backoff before
#: attempt n+1 is uniform in [0, min(cap, base * 2**n)] seconds ("full jitter").
CONFLICT_ATTEMPTS = 10
CONFLICT_BACKOFF_SECONDS = 0.025
CONFLICT_BACKOFF_CAP_SECONDS = 1.0
DEFAULT_RETENTION_DAYS = 365


def is_conflict(exc: BaseException) -> bool:
    """True when DynamoDB refused a write only because a transaction held one of its items.

    A single write answers ``TransactionConflictException``; a transaction is cancelled
    with reason ``TransactionConflict`` for the held items (a cancellation that also
    names ``ConditionalCheckFailed`` is a condition failure: retrying cannot change it).
    """
    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code")
    if code == "TransactionConflictException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = {r.get("Code") for r in exc.response.get("CancellationReasons") or []}
    return "TransactionConflict" in reasons and "ConditionalCheckFailed" not in reasons


_T = TypeVar("_T")
_A = TypeVar("_A")


class TableWrites:
    """The base of ``AuditTable``: its client, table and retention, and its writes' discipline."""

    def __init__(self, client: Any, table_name: str, retention_days: int = DEFAULT_RETENTION_DAYS,
                 announcer: CompletionEvents | None = None, *, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None):
        self.client = client
        self.table = table_name
        self.retention_seconds = retention_days * 86400
        #: puts the completion event for the manifests this table's :meth:`try_complete` completes.
        self.announcer = announcer
        self.sleep = sleep
        self._random = rng or random.Random()
        #: transaction conflicts met and retried by this table's writes (:meth:`_retrying`).
        self.conflicts = 0
        self._conflicts_lock = threading.Lock()  # claims are put from a few threads at once

    def _expires(self) -> int:
        return int(time.time()) + self.retention_seconds

    def _retrying(self, write: Callable[[], _T]) -> _T:
        """Run ``write``; retry it while DynamoDB refuses it for a transaction conflict (``thingpress.audit``).

        ``write`` is called afresh on every attempt, so it may choose again (another shard).
        """
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                return write()
            except ClientError as exc:
                if not is_conflict(exc) or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
                with self._conflicts_lock:
                    self.conflicts += 1
                self.sleep(self._random.uniform(0, min(CONFLICT_BACKOFF_CAP_SECONDS,
                                                       CONFLICT_BACKOFF_SECONDS * 2 ** attempt)))
        raise AssertionError("unreachable: the last attempt returns or raises")

    @staticmethod
    def _each(write: Callable[[_A], _T], args: Sequence[_A]) -> list[_T]:
        """``write(arg)`` for every arg, ``WRITE_THREADS`` at a time; the answers in order (the first
        error raised, once every write has ended)."""
        if len(args) <= 1:
            return [write(arg) for arg in args]
        with ThreadPoolExecutor(max_workers=min(WRITE_THREADS, len(args))) as pool:
            return list(pool.map(write, args))

    def _update_summary(self, mid: str, update: str, condition: str, values: dict[str, Any],
                        names: dict[str, str] | None = None) -> bool:
        """One conditional update of the manifest's summary item (conflicts retried); False when
        the condition failed (nothing written)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "Key": to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
            "UpdateExpression": update, "ConditionExpression": condition,
            "ExpressionAttributeValues": to_item(values),
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            self._retrying(lambda: self.client.update_item(**kwargs))
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _transact(self, items: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]]) -> bool:
        """Run a transaction whose conditions are all idempotency conditions.

        ``items``, or a function that builds them afresh for each attempt (a shard drawn
        again). False when one of them failed (that work was done already, so nothing was
        written); a conflict is retried (:meth:`_retrying`); other cancellations
        (throttling) raise so the caller retries.
        """
        build = items if callable(items) else (lambda: items)
        try:
            self._retrying(lambda: self.client.transact_write_items(TransactItems=build()))
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                return False
            raise
        return True
