"""DynamoDB transaction conflicts in the local cloud, which moto's one-at-a-time DynamoDB hides.

AWS ("Transaction conflict handling in DynamoDB",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling)
refuses a write to an item that an ongoing ``TransactWriteItems`` is writing:

* a ``PutItem``, ``UpdateItem`` or ``DeleteItem`` fails with ``TransactionConflictException`` (400);
* another ``TransactWriteItems`` naming the item is cancelled: ``TransactionCanceledException`` (400)
  whose ``CancellationReasons`` say ``TransactionConflict`` for that item and ``None`` for the others.

botocore retries neither, so the caller must handle them. moto applies each DynamoDB request at
once, under one lock (:func:`.dynamodb.one_at_a_time`), so no transaction is ever "ongoing" and code
that cannot survive these answers would pass every local test. The model: a ``TransactWriteItems``
that succeeds *holds* every item it names (table, hash key, range key) for ``hold_ms`` after it was
applied (AWS transactions take tens of milliseconds); during the hold, a write to a held item is
answered as above and nothing of it is applied. A cancelled transaction holds nothing. For chaos,
``inject`` is the probability that an item a write touches is answered as if it were held (seeded).

Not modelled: reads are never refused (AWS may refuse a ``TransactGetItems`` item that an ongoing
write holds; ignored here), and ``BatchWriteItem`` is not checked. A retry of the *same* transaction
(same ``ClientRequestToken``: what the SDK sends again after a 500) is not blocked by its own hold,
because AWS answers it as an idempotent repeat of a transaction that has finished.

Off by default in a process (hold 0, inject 0): nothing changes unless configured. The emulator
starts with :data:`EMULATOR_HOLD_MS` (AWS-like) unless :data:`HOLD_SETTING` says otherwise. One
process-wide :data:`HOLDS`: the emulator reads :data:`HOLD_SETTING` at start and serves :data:`CONFLICTS_PATH`
(GET: settings and counts; POST: replace the settings); unit tests use the ``transaction_holds``
fixture (tests/conftest.py), which resets it after each test.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from thingpress_cli.local.emulator.rule_state import RuleState

if TYPE_CHECKING:
    from moto.core.exceptions import JsonRESTError

#: Path of the emulator's endpoint for :data:`HOLDS` (GET shows, POST replaces the settings).
CONFLICTS_PATH = "/moto-api/thingpress/conflicts"
#: The emulator's start-up setting: the hold of a transaction's items, in milliseconds (0: off).
HOLD_SETTING = "THINGPRESS_EMULATOR_TRANSACTION_HOLD_MS"
#: The emulator's hold when the setting is unset: about one DynamoDB transaction's time, so the local
#: deployment meets conflicts as AWS's does (in-process unit tests start with holds off).
EMULATOR_HOLD_MS = 25.0
#: Single-item writes refused on a held item; ``TransactWriteItems`` is :data:`TRANSACTION`.
SINGLE_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
TRANSACTION = "TransactWriteItems"
MESSAGE = "Transaction is ongoing for the item"
DEFAULTS: dict[str, Any] = {"hold_ms": 0.0, "inject": 0.0, "seed": 0}
#: The longest hold accepted: a minute is already far beyond any AWS transaction.
MAX_HOLD_MS = 60_000.0

#: An item: (table ARN, hash key, range key or None), the keys as moto's ``DynamoType``.
Key = tuple[str, Any, Any]


class TransactionHolds(RuleState):
    """The hold time, the inject rate, the items held now and the counts of conflicts answered."""

    def _clear(self) -> None:
        """Off, nothing held, counts zero."""
        self.settings = dict(DEFAULTS)
        self._random = random.Random(DEFAULTS["seed"])
        self._held: dict[Key, tuple[float, str | None]] = {}  # item -> (held until, transaction token)
        self.counts = {"single_writes": 0, "transactions": 0, "injected": 0}

    @property
    def active(self) -> bool:
        """Whether writes need checking at all (off: the DynamoDB path is unchanged)."""
        return bool(self.settings["hold_ms"] or self.settings["inject"])

    def configure(self, settings: dict[str, Any]) -> None:
        """Replace the settings (a key left out takes its default); validated first. Clears the holds, keeps the counts."""
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown conflict settings: {', '.join(sorted(unknown))}")
        wanted = {**DEFAULTS, **settings}
        hold_ms, inject, seed = float(wanted["hold_ms"]), float(wanted["inject"]), wanted["seed"]
        if not 0 <= hold_ms <= MAX_HOLD_MS:
            raise ValueError(f"hold_ms is 0..{MAX_HOLD_MS:g} milliseconds, not {wanted['hold_ms']}")
        if not 0 <= inject <= 1:
            raise ValueError(f"inject is a probability (0..1), not {wanted['inject']}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed is an integer, not {seed!r}")
        with self._lock:
            self.settings = {"hold_ms": hold_ms, "inject": inject, "seed": seed}
            self._random = random.Random(seed)
            self._held.clear()

    def report(self) -> dict[str, Any]:
        """The settings, the conflicts answered so far and how many items are held now."""
        with self._lock:
            now = self.clock()
            held = sum(1 for until, _ in self._held.values() if until > now)
            return {"settings": dict(self.settings), "counts": dict(self.counts), "held": held}

    def refusal(self, action: str, keys: Sequence[Key | None], token: str | None = None) -> JsonRESTError | None:
        """The error AWS answers a write with when an item it names is held (or injected), else None.

        ``keys`` has one entry per item the request names, in its order (one for a
        single write, one per action of a transaction; None where moto has no such
        table or key); ``token`` is a transaction's ``ClientRequestToken``.
        """
        with self._lock:
            now, rate = self.clock(), float(self.settings["inject"])
            held = [key is not None and self._held_against(key, now, token) for key in keys]
            injected = [key is not None and not was_held and rate > 0 and self._random.random() < rate
                        for key, was_held in zip(keys, held)]
            conflicts = [h or i for h, i in zip(held, injected)]
            if not any(conflicts):
                return None
            self.counts["transactions" if action == TRANSACTION else "single_writes"] += 1
            self.counts["injected"] += int(any(injected))
        return conflict_error(action, conflicts)

    def hold(self, keys: Sequence[Key | None], token: str | None = None) -> None:
        """A transaction that succeeded holds its items for ``hold_ms`` from now (expired holds are dropped)."""
        with self._lock:
            if not self.settings["hold_ms"]:
                return
            now = self.clock()
            self._held = {key: held for key, held in self._held.items() if held[0] > now}
            until = now + self.settings["hold_ms"] / 1000.0
            self._held.update((key, (until, token)) for key in keys if key is not None)

    def _held_against(self, key: Key, now: float, token: str | None) -> bool:
        until, holder = self._held.get(key, (0.0, None))
        return until > now and not (token is not None and holder == token)


def conflict_error(action: str, conflicts: Sequence[bool]) -> JsonRESTError:
    """moto's exception for AWS's answer: ``TransactionConflictException`` for a single write, else a
    ``TransactionCanceledException`` with one reason per action (moto renders its body, so botocore
    puts ``CancellationReasons`` into ``error.response`` as for moto's own cancellations)."""
    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException, TransactionCanceledException

    if action != TRANSACTION:
        return DynamodbException(ERROR_TYPE_PREFIX + "TransactionConflictException", MESSAGE)
    return TransactionCanceledException([("TransactionConflict", MESSAGE, None) if conflict else (None, None, None)
                                         for conflict in conflicts])


def from_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The settings the emulator starts with: ``{"hold_ms": ...}`` from :data:`HOLD_SETTING` (unset:
    :data:`EMULATOR_HOLD_MS`)."""
    value = (os.environ if environ is None else environ).get(HOLD_SETTING)
    return {"hold_ms": float(value) if value not in (None, "") else EMULATOR_HOLD_MS}


#: The process's holds: moto's DynamoDB handler consults it (:func:`.dynamodb.one_at_a_time`).
HOLDS = TransactionHolds()
