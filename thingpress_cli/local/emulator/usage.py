"""What a run would be billed for: requests per service and DynamoDB request units, metered as AWS meters them.

moto answers ``ReturnConsumedCapacity`` with a fixed figure, so the emulator meters every request
itself (always on; read and reset at ``/moto-api/thingpress/usage``):

* **Requests** per service and operation (:func:`count_request`), and SQS's billed requests: "each
  64 KB chunk of a payload is billed as 1 request" (https://aws.amazon.com/sqs/pricing/), so a
  request is ``ceil(body / 64 KiB)`` billed requests. The receives that found no message are also
  counted on their own (``sqs_empty_receives``, by :mod:`.sqs`): Lambda's pollers make them on every
  mapped queue whether or not anything is imported, so a benchmark can tell them from the work.
* **DynamoDB request units** (:func:`metered`, under the one-at-a-time lock), by the developer
  guide's rules ("DynamoDB read and write operations",
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):
  a write consumes 1 unit per KB of the larger of the item before and after it (rounded up, at
  least 1), twice that inside ``TransactWriteItems`` (every action, ``ConditionCheck`` included:
  a transaction prepares and commits each item); a strongly consistent read 1 unit per 4 KB of
  what it returns (rounded up, at least 1), half that eventually consistent (a ``Query`` of an
  index always), twice that in ``TransactGetItems``. A write that changes an item's entry in a
  global secondary index also writes the index: 1 unit per KB of the projected entry, two writes
  when the index key changes ("Provisioned throughput considerations for global secondary
  indexes", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations.Writes).
  A refused write (condition failed, transaction cancelled) is metered like one that applied.

Units are kept by item kind: the prefix of the partition key and of the sort key up to their
second ``#`` (``M#/C#``, ``D#/C#``, ``M#/#SUMMARY``), so a benchmark can say what costs what
without the emulator knowing the table's layout. Not metered: a ``Query``'s items that a filter
dropped (it counts what it returns), storage, streams, backups.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from thingpress_cli.local.emulator.request_log import describe
from thingpress_cli.local.emulator.wsgi_io import StartResponse, json_response, read_body

#: Path of the usage endpoint (GET: the counts so far; POST: reset them).
USAGE_PATH = "/moto-api/thingpress/usage"
SQS_CHUNK_BYTES = 64 * 1024
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
WRITES = ("PutItem", "UpdateItem", "DeleteItem")
READS = ("GetItem", "Query", "Scan")
#: the longest key prefix before its ``#`` that names a kind of item (``M#``, ``#SHARD#`` aside)
MAX_PREFIX = 2


class Usage:
    """Counts of requests and DynamoDB units since the last reset (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: Counter[str] = Counter()
            self.sqs_billed_requests = 0
            self.sqs_empty_receives = 0
            self.write_units: Counter[str] = Counter()
            self.index_write_units: Counter[str] = Counter()
            self.read_units: Counter[str] = Counter()

    def add(self, *, request: str | None = None, sqs_billed: int = 0, sqs_empty_receives: int = 0,
            writes: dict[str, float] | None = None, index_writes: dict[str, float] | None = None,
            reads: dict[str, float] | None = None) -> None:
        with self._lock:
            if request is not None:
                self.requests[request] += 1
            self.sqs_billed_requests += sqs_billed
            self.sqs_empty_receives += sqs_empty_receives
            self.write_units.update(writes or {})
            self.index_write_units.update(index_writes or {})
            self.read_units.update(reads or {})

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": dict(self.requests), "sqs_billed_requests": self.sqs_billed_requests,
                    "sqs_empty_receives": self.sqs_empty_receives,
                    "dynamodb": {"write_units": dict(self.write_units),
                                 "index_write_units": dict(self.index_write_units),
                                 "read_units": dict(self.read_units)}}


#: The emulator's meter (one per process: the server's, or in-process moto's).
USAGE = Usage()


def count_request(environ: dict[str, Any]) -> None:
    """One request as billed: per service and operation, and SQS's 64 KB chunks."""
    service, operation = describe(environ)
    billed = 0
    if service == "sqs":
        billed = max(1, math.ceil(int(environ.get("CONTENT_LENGTH") or 0) / SQS_CHUNK_BYTES))
    USAGE.add(request=f"{service} {operation}", sqs_billed=billed)


def usage_endpoint(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    if environ.get("REQUEST_METHOD") == "POST":
        read_body(environ)
        USAGE.reset()
    return json_response(start_response, "200 OK", USAGE.report())


# -- DynamoDB ----------------------------------------------------------------------------------------


def _prefix(value: Any) -> str:
    """``M#`` of ``M#generated-ab``, ``#SHARD#`` of ``#SHARD#03``, ``#SUMMARY`` of ``#SUMMARY``, ``*`` of ``3fa9...`` and of ``2026-12-06T07:29:59Z#m``."""
    text = str(getattr(value, "value", value) or "")
    if text.startswith("#"):
        second = text.find("#", 1)
        return text if second < 0 else text[:second + 1]
    first = text.find("#")
    # a prefix is a short tag (M#, C#, S#); a key without one (a fingerprint, a timestamp): any value
    return text[:first + 1] if 0 < first <= MAX_PREFIX else "*"


def kind(hash_key: Any, range_key: Any) -> str:
    """An item's kind: its partition and sort key prefixes (``M#/C#``), not their values."""
    return f"{_prefix(hash_key)}/{_prefix(range_key)}"


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def _projected(index: Any, table: Any, item: Any) -> dict[str, Any]:
    """The attributes of ``item`` that ``index`` holds (its projection)."""
    projection = (getattr(index, "projection", None) or {}).get("ProjectionType", "ALL")
    if projection == "ALL":
        return dict(item.attrs)
    keep = {table.hash_key_attr, table.range_key_attr, *(k["AttributeName"] for k in index.schema)}
    if projection == "INCLUDE":
        keep |= set(index.projection.get("NonKeyAttributes", []))
    return {name: value for name, value in item.attrs.items() if name in keep}


def _size(attrs: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value.size() for name, value in attrs.items())


def _index_key(index: Any, item: Any) -> tuple[str, ...] | None:
    if item is None:
        return None
    values = tuple(item.attrs.get(k["AttributeName"]) for k in index.schema)
    return None if any(v is None for v in values) else tuple(str(v.value) for v in values)


def _index_writes(table: Any, before: Any, after: Any) -> dict[str, float]:
    """Write units on each global secondary index for one item going from ``before`` to ``after``."""
    units: dict[str, float] = {}
    for index in getattr(table, "global_indexes", None) or []:
        old, new = _index_key(index, before), _index_key(index, after)
        if old is None and new is None:
            continue
        entries = [_projected(index, table, i) for i, k in ((before, old), (after, new)) if k is not None]
        if old == new and entries[0] == entries[-1]:
            continue  # in the index before and after, and nothing it holds changed
        writes = 2 if old is not None and new is not None and old != new else 1
        units[index.name] = units.get(index.name, 0) + writes * _units(max(map(_size, entries)), WRITE_UNIT_BYTES)
    return units


def _write_targets(action: str, params: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
    """(transaction-shaped entry, multiplier) for each item a write request names."""
    if action == "TransactWriteItems":
        return [(entry, 2) for entry in params.get("TransactItems") or []]
    if action in WRITES:
        return [({action: params}, 1)]
    if action == "BatchWriteItem":
        out = []
        for table, requests in (params.get("RequestItems") or {}).items():
            for request in requests:
                if "PutRequest" in request:
                    out.append(({"Put": {"TableName": table, "Item": request["PutRequest"]["Item"]}}, 1))
                elif "DeleteRequest" in request:
                    out.append(({"Delete": {"TableName": table, "Key": request["DeleteRequest"]["Key"]}}, 1))
        return out
    return []


def _get(table: Any, hash_key: Any, range_key: Any) -> Any:
    try:
        return table.get_item(hash_key, range_key)
    except Exception:  # noqa: BLE001 -- moto raises for a missing item or key in some versions: not found
        return None


def _read_units(action: str, params: dict[str, Any], body: str) -> dict[str, float]:
    try:
        answer = json.loads(body or "{}")
    except ValueError:
        return {}
    from moto.dynamodb.models.dynamo_type import DynamoType

    def size(raw: dict[str, Any]) -> int:
        # moto's Item(...).size() without building an Item: its attribute dict re-measures the whole
        # item on every attribute set (quadratic), a third of a Query's cost at 17 attributes.
        return _size({name: DynamoType(value) for name, value in raw.items()})

    eventual = 0.5 if not params.get("ConsistentRead") or params.get("IndexName") else 1.0
    if action == "GetItem":
        item = answer.get("Item") or {}
        return {"read": eventual * _units(size(item), READ_UNIT_BYTES)}
    items = answer.get("Items") or []
    return {"read": eventual * _units(sum(size(i) for i in items), READ_UNIT_BYTES)}


def metered(handler: Any, call_action: Callable[[Any], Any]) -> Any:
    """Run one DynamoDB request (already under the one-at-a-time lock) and meter its units."""
    action = handler._get_action()
    params = getattr(handler, "params", None) or {}
    targets = _write_targets(action, params)
    if not targets:
        answer = call_action(handler)
        if action in READS:
            reads = _read_units(action, params, answer[2] if isinstance(answer, tuple) else "")
            table_key = params.get("IndexName") or params.get("TableName", "?")
            USAGE.add(reads={f"{action} {table_key}": reads.get("read", 0.0)})
        elif action == "TransactGetItems":
            USAGE.add(reads={"TransactGetItems": 2.0 * len(params.get("TransactItems") or [])})
        return answer
    from thingpress_cli.local.emulator.dynamodb import transaction_items

    backend = handler.dynamodb_backend
    named = [(transaction_items(backend, [entry]), multiplier) for entry, multiplier in targets]
    # copies: moto updates an item in place
    before = [[copy.deepcopy(_get(t, h, r)) for t, h, r in found] for found, _ in named]
    answer = call_action(handler)
    writes: Counter[str] = Counter()
    index_writes: Counter[str] = Counter()
    for (found, multiplier), olds in zip(named, before, strict=True):
        for (table, hash_key, range_key), old in zip(found, olds, strict=True):
            new = _get(table, hash_key, range_key)
            size = max(int(old.size()) if old is not None else 0, int(new.size()) if new is not None else 0)
            writes[kind(hash_key, range_key)] += multiplier * _units(size, WRITE_UNIT_BYTES)
            index_writes.update(_index_writes(table, old, new))
    USAGE.add(writes=dict(writes), index_writes=dict(index_writes))
    return answer


def totals(report: dict[str, Any]) -> dict[str, float]:
    """Sums of a :meth:`Usage.report`: write units (table + indexes), read units."""
    ddb = report["dynamodb"]
    return {"write_units": sum(ddb["write_units"].values()) + sum(ddb["index_write_units"].values()),
            "read_units": sum(ddb["read_units"].values())}


def requests_of(report: dict[str, Any], service: str) -> int:
    return sum(n for name, n in report["requests"].items() if name.split(" ", 1)[0] == service)
