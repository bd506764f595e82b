"""Global secondary index lag in the local cloud: an index read answers from the table as it was ``lag_ms`` ago.

AWS (DynamoDB developer guide, "Using Global Secondary Indexes in DynamoDB",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reading and
#GSI.Writes): "Queries on global secondary indexes support eventual consistency only. Changes to the
table data are propagated to the global secondary indexes within a fraction of a second, under normal
conditions. However, in some unlikely failure scenarios, longer propagation delays might occur."
("DynamoDB read consistency",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html:
"All reads from GSIs and streams are eventually consistent"; AWS re:Post,
https://repost.aws/knowledge-center/dynamodb-missing-table-items-gsi: "Write operations propagate to a
GSI within 1 second".) moto updates its indexes with the write (they are a filter over the table's
items), so code that counts on a GSI listing what was just written passes every local test.

The model: a ``Query`` or ``Scan`` naming a *global* secondary index (``IndexName``) answers from the
table's items as they were ``lag_ms`` before the request; the table itself (``GetItem``, a ``Query``
without ``IndexName``, ``ConsistentRead``) is read as it is now. To do that, every write to a table
that has a GSI first keeps a copy of each item it names as it was before the write (``PutItem``,
``UpdateItem``, ``DeleteItem``, ``TransactWriteItems``, ``BatchWriteItem``), with the time; an index
read puts back, for that one request, every item written in the last ``lag_ms`` as it was before its
first such write (so a new item is missing, an updated one shows its old attributes, a deleted one is
still there), then restores the table. Copies older than ``lag_ms`` are dropped. A write refused or
failed keeps a copy that equals the item: putting it back changes nothing. This is one snapshot of
the past for the whole index (AWS propagates each item on its own: a snapshot is one of the
states AWS may show).

Not modelled: PartiQL writes (``ExecuteStatement`` and co.: thingpress uses none), local secondary
indexes, and eventually consistent reads of the table itself (thingpress reads its table with
``ConsistentRead``).

Off by default in a process (lag 0): nothing changes unless configured. The emulator starts with
:data:`EMULATOR_LAG_MS` (AWS-like) unless :data:`LAG_SETTING` says otherwise, and serves :data:`LAG_PATH`
(GET: the settings; POST: replace them). Unit tests use the ``index_lag`` fixture (tests/conftest.py):
a manual clock, reset after each test. moto's DynamoDB handler calls :meth:`IndexLag.around` for every
request, under the lock that runs DynamoDB requests one at a time (:func:`.dynamodb.one_at_a_time`), so
swapping a table's items for one request is safe.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from thingpress_cli.local.emulator import query_range
from thingpress_cli.local.emulator.rule_state import RuleState
from thingpress_cli.local.emulator.wsgi_io import json_response, read_body

#: Path of the emulator's endpoint for :data:`INDEX_LAG` (GET shows, POST replaces the settings).
LAG_PATH = "/moto-api/thingpress/index-lag"
#: The emulator's start-up setting: how far index reads lag behind the table, in milliseconds (0: off).
LAG_SETTING = "THINGPRESS_EMULATOR_INDEX_LAG_MS"
#: The emulator's lag when the setting is unset: a quarter second, within AWS's "fraction of a second"
#: (in-process unit tests start with no lag).
EMULATOR_LAG_MS = 250.0
#: The longest lag accepted: AWS's "unlikely failure scenarios" are not bounded, a minute is plenty.
MAX_LAG_MS = 60_000.0
DEFAULTS: dict[str, Any] = {"lag_ms": 0.0}
#: Writes whose items are kept as they were before.
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})
#: Reads that may name an index.
INDEX_READS = frozenset({"Query", "Scan"})


@dataclass(frozen=True, slots=True)
class _Before:
    """An item as it was just before a write at ``at`` (None: it did not exist)."""

    at: float
    table: Any  #: moto's ``Table`` (identity: a table deleted and created again starts afresh)
    hash_key: Any
    range_key: Any
    item: Any


class IndexLag(RuleState):
    """The lag, and the items written within it as they were before."""

    def _clear(self) -> None:
        """Off, nothing kept."""
        self.settings = dict(DEFAULTS)
        self._before: deque[_Before] = deque()
        self.counts = {"lagged_reads": 0}

    @property
    def lag(self) -> float:
        """The lag in seconds."""
        return float(self.settings["lag_ms"]) / 1000.0

    @property
    def active(self) -> bool:
        return self.settings["lag_ms"] > 0

    def configure(self, settings: dict[str, Any]) -> None:
        """Replace the settings (a key left out takes its default); validated first. Forgets what was kept."""
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown index lag settings: {', '.join(sorted(unknown))}")
        lag_ms = float({**DEFAULTS, **settings}["lag_ms"])
        if not 0 <= lag_ms <= MAX_LAG_MS:
            raise ValueError(f"lag_ms is 0..{MAX_LAG_MS:g} milliseconds, not {settings['lag_ms']}")
        with self._lock:
            self.settings = {"lag_ms": lag_ms}
            self._before.clear()

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {"settings": dict(self.settings), "counts": dict(self.counts), "kept": len(self._before)}

    def around(self, handler: Any) -> contextlib.AbstractContextManager[None]:
        """The context one DynamoDB request runs in (``handler``: moto's ``DynamoHandler``)."""
        if not self.active:
            return contextlib.nullcontext()
        action = handler._get_action()
        params = getattr(handler, "params", None) or {}
        if action in WRITES:
            self._keep(handler.dynamodb_backend, action, params)
        elif action in INDEX_READS and params.get("IndexName"):
            table = handler.dynamodb_backend.tables.get(params.get("TableName"))
            if table is not None and any(i.name == params["IndexName"] for i in table.global_indexes or []):
                return self._as_before(table)
        return contextlib.nullcontext()

    def _keep(self, backend: Any, action: str, params: dict[str, Any]) -> None:
        """Keep every item the write names, as it is now (before the write)."""
        with self._lock:
            now = self.clock()
            self._forget(now)
            for table, hash_key, range_key in _written(backend, action, params):
                if table.global_indexes:
                    item = table.get_item(hash_key, range_key)
                    self._before.append(_Before(now, table, hash_key, range_key, copy.deepcopy(item)))

    @contextlib.contextmanager
    def _as_before(self, table: Any) -> Iterator[None]:
        """``table``'s items as they were ``lag`` ago, for the one request run inside."""
        with self._lock:
            self._forget(self.clock())
            first: dict[tuple[Any, Any], Any] = {}
            for kept in self._before:  # oldest first: the first copy of an item is as it was then
                if kept.table is table:
                    first.setdefault((kept.hash_key, kept.range_key), kept.item)
            self.counts["lagged_reads"] += bool(first)  # index reads answered from a past state
        if not first:
            yield
            return
        current = table.items
        table.items = _past(table, current, first)
        try:
            yield
        finally:
            table.items = current

    def _forget(self, now: float) -> None:
        """Drop the copies older than the lag: the index shows those writes already."""
        horizon = now - self.lag
        while self._before and self._before[0].at <= horizon:
            self._before.popleft()


def _past(table: Any, items: Any, before: dict[tuple[Any, Any], Any]) -> Any:
    """A shallow copy of moto's ``table.items`` with ``before``'s items put back (the table is not changed)."""
    past = copy.copy(items)
    copied: set[Any] = set()
    for (hash_key, range_key), item in before.items():
        if table.range_key_attr is None:
            if item is None:
                past.pop(hash_key, None)
            else:
                past[hash_key] = item
            continue
        if hash_key not in copied:
            past[hash_key] = dict(items.get(hash_key, {}))
            copied.add(hash_key)
        if item is None:
            past[hash_key].pop(range_key, None)
        else:
            past[hash_key][range_key] = item
    query_range.as_past(past, before)
    return past


def _written(backend: Any, action: str, params: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
    """(table, hash key, range key) of every item a write request names (unknown tables and keys skipped)."""
    if action == "TransactWriteItems":
        named = [(op.get("TableName"), op.get("Item") if "Item" in op else op.get("Key"))
                 for entry in params.get("TransactItems") or [] if isinstance(entry, dict)
                 for kind, op in entry.items() if kind != "ConditionCheck" and isinstance(op, dict)]
    elif action == "BatchWriteItem":
        named = [(name, (request.get("PutRequest") or {}).get("Item") or (request.get("DeleteRequest") or {}).get("Key"))
                 for name, requests in (params.get("RequestItems") or {}).items()
                 for request in requests or [] if isinstance(request, dict)]
    else:
        named = [(params.get("TableName"), params.get("Item") if action == "PutItem" else params.get("Key"))]
    found = []
    for name, attrs in named:
        key = _key(backend.tables.get(name), attrs)
        if key is not None:
            found.append(key)
    return found


def _key(table: Any, attrs: Any) -> tuple[Any, Any, Any] | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    if table is None or not isinstance(attrs, dict) or table.hash_key_attr not in attrs:
        return None
    range_key = None
    if table.range_key_attr is not None:
        if table.range_key_attr not in attrs:
            return None
        range_key = DynamoType(attrs[table.range_key_attr])
    return table, DynamoType(attrs[table.hash_key_attr]), range_key


def from_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The settings the emulator starts with: ``{"lag_ms": ...}`` from :data:`LAG_SETTING` (unset:
    :data:`EMULATOR_LAG_MS`)."""
    value = (os.environ if environ is None else environ).get(LAG_SETTING)
    return {"lag_ms": float(value) if value not in (None, "") else EMULATOR_LAG_MS}


def endpoint(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """``GET``/``POST`` :data:`LAG_PATH`: show, or replace, the settings of :data:`INDEX_LAG`."""
    if environ.get("REQUEST_METHOD") == "POST":
        import json

        try:
            INDEX_LAG.configure(json.loads(read_body(environ) or b"{}"))
        except (ValueError, TypeError) as error:
            return json_response(start_response, "400 Bad Request", {"message": str(error)})
    return json_response(start_response, "200 OK", INDEX_LAG.report())


#: The process's index lag: moto's DynamoDB handler consults it (:func:`.dynamodb.one_at_a_time`).
INDEX_LAG = IndexLag()
