"""DynamoDB as AWS applies it: one request at a time, with transaction conflicts and index lag on it.

* **DynamoDB requests one at a time.** DynamoDB applies a conditional write or a
  transaction atomically; moto's backend is plain Python shared by the server's
  threads, so two concurrent ``TransactWriteItems`` with the same
  ``attribute_not_exists`` condition could both succeed (seen: a certificate
  delivered twice at once was counted twice). DynamoDB requests are serialized
  (:func:`one_at_a_time` on moto's DynamoDB response handler, so in-process
  ``mock_aws`` clients get it too).
* **DynamoDB transaction conflicts** (:mod:`.conflicts`, off by default). Serialized,
  no transaction is ever "ongoing", so moto never answers what AWS answers a write to an
  item an ongoing ``TransactWriteItems`` holds
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling):
  ``TransactionConflictException``, or a transaction cancelled with reason
  ``TransactionConflict``. Under the same lock, a transaction that succeeded holds its
  items for a while and writes to them are refused as AWS does
  (:func:`_with_transaction_holds`); the hold (``THINGPRESS_EMULATOR_TRANSACTION_HOLD_MS``)
  and a chaos rate are set at ``/moto-api/thingpress/conflicts``.
* **Global secondary indexes that lag** (:mod:`.index_lag`, off by default). moto updates an
  index with the write; AWS propagates it "within a fraction of a second". Under the same lock,
  a ``Query``/``Scan`` of a GSI answers from the table as it was ``lag_ms`` ago
  (``THINGPRESS_EMULATOR_INDEX_LAG_MS``; ``/moto-api/thingpress/index-lag``).

* **A transaction repeated with its ``ClientRequestToken``** is answered, not applied again
  (:mod:`.transaction_tokens`): botocore resends one after a lost answer, and moto applied it twice.
* **Request units metered** as AWS bills them (:mod:`.usage`).

The cost of a transaction's rollback: :mod:`.speed`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from thingpress_cli.local.emulator.conflicts import HOLDS, SINGLE_WRITES, TRANSACTION, Key
from thingpress_cli.local.emulator.guard import Patched
from thingpress_cli.local.emulator.index_lag import INDEX_LAG
from thingpress_cli.local.emulator.transaction_tokens import TOKENS
from thingpress_cli.local.emulator.usage import metered

PATCHED = (Patched("moto.dynamodb.responses", "DynamoHandler.call_action", ("self",)),)


def one_at_a_time(call_action: Callable[..., Any]) -> Callable[..., Any]:
    """A response class's ``call_action`` run under one lock: each request applies atomically.

    Under the same lock, when :data:`.conflicts.HOLDS` is on, a write is first checked
    against the items recent transactions hold (:func:`_with_transaction_holds`); with
    :data:`.index_lag.INDEX_LAG` on, a GSI read sees the table as it was a moment ago; every
    request's request units are metered (:func:`.usage.metered`); a transaction that repeats one that
    succeeded (its ``ClientRequestToken``) is answered without being applied (:mod:`.transaction_tokens`).
    """
    lock = threading.Lock()

    @functools.wraps(call_action)
    def serialized(self: Any) -> Any:
        with lock, INDEX_LAG.around(self):
            if HOLDS.active:
                return TOKENS.around(self, lambda handler: _with_transaction_holds(
                    handler, lambda held: metered(held, call_action)))
            return TOKENS.around(self, lambda handler: metered(handler, call_action))

    return serialized


def _with_transaction_holds(handler: Any, call_action: Callable[..., Any]) -> Any:
    """A DynamoDB write refused as AWS refuses it during a transaction on its item, else applied.

    AWS: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling
    (the rules and the model: :mod:`.conflicts`). A refused request is answered
    before moto sees it, so nothing of it is applied; a ``TransactWriteItems`` that
    succeeded holds its items.
    """
    action = handler._get_action()
    if action not in SINGLE_WRITES and action != TRANSACTION:
        return call_action(handler)
    params = getattr(handler, "params", None) or {}
    entries = params.get("TransactItems") if action == TRANSACTION else [{action: params}]
    keys = [_item_key(handler.dynamodb_backend, entry) for entry in entries or []]
    token = params.get("ClientRequestToken") if action == TRANSACTION else None
    refusal = HOLDS.refusal(action, keys, token)
    if refusal is not None:  # rendered as moto's call_action renders an error its action raises
        headers = {**handler.response_headers, **dict(refusal.get_headers()), "status": str(refusal.code)}
        return refusal.code, headers, refusal.description
    answer = call_action(handler)
    if action == TRANSACTION and answer[0] == 200:
        HOLDS.hold(keys, token)
    return answer


def _item_key(backend: Any, entry: Any) -> Key | None:
    """(table ARN, hash key, range key) of the one item a transaction action names, else None.

    A single write passes as ``{"PutItem": params}``: its ``Item`` or ``Key`` is read as a
    transaction's ``Put``/``Update``/``Delete`` is (:func:`transaction_items`).
    """
    found = transaction_items(backend, [entry])
    if not found:
        return None
    table, hash_key, range_key = found[0]
    return table.table_arn, hash_key, range_key


def transaction_items(backend: Any, transact_items: Any) -> list[tuple[Any, Any, Any]]:
    """(table, hash key, range key) of every item a ``TransactWriteItems`` request names."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    found = []
    for entry in transact_items if isinstance(transact_items, list) else []:
        op = next(iter(entry.values()), None) if isinstance(entry, dict) and len(entry) == 1 else None
        table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
        attrs = (op.get("Item") if "Item" in op else op.get("Key")) if table is not None else None
        if not isinstance(attrs, dict) or table.hash_key_attr not in attrs:
            continue
        range_key = None
        if table.range_key_attr is not None:
            if table.range_key_attr not in attrs:
                continue
            range_key = DynamoType(attrs[table.range_key_attr])
        found.append((table, DynamoType(attrs[table.hash_key_attr]), range_key))
    return found


def install() -> None:
    """DynamoDB requests one at a time (with the transaction holds and the index lag under the lock)."""
    from moto.dynamodb.responses import DynamoHandler

    DynamoHandler.call_action = one_at_a_time(DynamoHandler.call_action)  # type: ignore[method-assign]
