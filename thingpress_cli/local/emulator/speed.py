"""The same answers from moto at less cost: SQS clock and counts, lookups by key, item-level rollback,
update expressions.

* **SQS receive in linear time.** moto 5.2's ``ReceiveMessage`` re-reads *every*
  queue attribute (three scans of the queue) for each message it returns, to
  check the retention period, and its clock goes through two ``datetime``
  conversions per call: a receive of 10 from a queue of 200 took ~200 ms, and a
  benchmark's queue of 100k messages would take minutes per receive. The
  retention check reads the one attribute, and moto's SQS clock is ``time.time()``
  (same value: seconds since the epoch, UTC). ``SendMessage`` reads every queue
  attribute too (for one flag), so each send counted the queue's messages three
  times with a clock reading per message; the counts now take one pass and one
  reading.
* **Constant-time request dispatch and lookups** (:func:`speed_up_moto`). Measured
  with py-spy on the floor benchmark, about a third of the emulator's CPU went to
  work that does not change between requests: moto's dispatcher lists and
  checks its ~150 module folders with ``stat`` on every request, under a global lock
  (``list_of_moto_modules``), then tries every service's URL patterns; every
  response class is introspected with ``inspect.getmembers`` to find the action;
  and IoT finds a thing by name and a certificate by ARN by scanning every thing
  and certificate (``describe_thing``, ``_get_principal``), so each call grew
  with the number of devices. These are now computed once, or looked up by key.
  The answers are the same; only the cost changes.
* **Transactions that copy only their items.** moto's ``TransactWriteItems``
  deep-copies every table it touches before it starts, to roll back on failure:
  with the audit table at a few thousand rows that was 70 % of the emulator's
  CPU in a pipeline run, and it grows with the table. :func:`item_level_rollback`
  snapshots only the items the transaction names (at most 100, each once), lets
  moto run it unchanged, and puts those items back if it fails. Same outcome:
  a transaction touches only the items it names.
* **An item built in one pass.** moto's ``Item`` fills its attributes one by one into a
  ``LimitedSizeDict``, whose ``__setitem__`` adds up the size of every attribute already there
  to check DynamoDB's 400 KB item limit: each item written cost O(attributes²) size walks (an
  outcome row of 17 attributes, about 150), a tenth of a ``PutItem``'s time in the emulator.
  :func:`one_pass_item` fills the dict and checks the same limit once, on the total: an item moto
  refuses (``ItemSizeTooLarge``, its total above the limit) is refused, one it keeps is kept.
* **Update expressions parsed once, walked without rebuilding their rules.** An ``UpdateItem``
  cost three times a ``GetItem`` in the emulator (3.1 ms of CPU against 1.0, in process): moto
  parses the expression twice per call (the response class, then the backend), and each of
  the ten processors that validate it rebuilds its table of node types on every node it visits
  (``DepthFirstTraverser.nodes_to_be_processed``: a dict and a tuple, about 700 times per call).
  :func:`parsed_once` keeps the tree of each expression text (moto only reads it: its validator
  works on a deep copy), and :func:`walked_once` reads the table once per walk and visits the same
  nodes in the same order. A manifest's summary row takes one update per batch of outcomes; the
  unit suite makes about 1,700.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from moto.core.utils import unix_time

from thingpress_cli.local.emulator.dynamodb import transaction_items
from thingpress_cli.local.emulator.guard import Patched
from thingpress_cli.local.emulator.iot import thing_by_name

PATCHED = (
    Patched("moto.sqs.models", "unix_time", ("dt",)),
    Patched("moto.sqs.models", "unix_time_millis", ("dt",)),
    Patched("moto.sqs.models", "SQSBackend.is_message_valid_based_on_retention_period", ("self", "queue_name", "message")),
    Patched("moto.sqs.models", "Queue.messages"),
    Patched("moto.sqs.models", "Queue.approximate_number_of_messages"),
    Patched("moto.sqs.models", "Queue.approximate_number_of_messages_not_visible"),
    Patched("moto.sqs.models", "Queue.approximate_number_of_messages_delayed"),
    Patched("moto.backends", "list_of_moto_modules", ()),
    Patched("moto.moto_server.werkzeug_app", "DomainDispatcherApplication.get_backend_for_host", ("self", "host")),
    Patched("moto.core.responses", "method_names_from_class", ("clazz",)),
    Patched("moto.iot.models", "IoTBackend.describe_thing", ("self", "thing_name")),
    Patched("moto.iot.models", "IoTBackend._get_principal", ("self", "principal_arn")),
    Patched("moto.dynamodb.models", "copy"),
    Patched("moto.dynamodb.models", "DynamoDBBackend.transact_write_items", ("self", "transact_items")),
    Patched("moto.dynamodb.models.table", "Table"),
    Patched("moto.dynamodb.models.dynamo_type", "Item.__init__", ("self", "hash_key", "range_key", "attrs")),
    Patched("moto.dynamodb.models.dynamo_type", "LimitedSizeDict"),
    Patched("moto.dynamodb.parsing.expressions", "UpdateExpressionParser.make", ("expression_str",)),
    Patched("moto.dynamodb.parsing.ast_nodes", "DepthFirstTraverser.traverse", ("self", "node")),
    Patched("moto.dynamodb.parsing.ast_nodes", "DepthFirstTraverser.traverse_node_recursively", ("self", "node", "child_id")),
    Patched("moto.dynamodb.parsing.ast_nodes", "DepthFirstTraverser.nodes_to_be_processed", ("self",)),
    Patched("moto.dynamodb.parsing.ast_nodes", "DepthFirstTraverser.process", ("self", "node")),
    Patched("moto.dynamodb.parsing.ast_nodes", "DepthFirstTraverser.pre_processing_of_child", ("self", "parent_node", "child_id")),
)


def _unix_time(dt: Any = None) -> float:
    return unix_time(dt) if dt is not None else time.time()


def _unix_time_millis(dt: Any = None) -> float:
    return (unix_time(dt) if dt is not None else time.time()) * 1000.0


def _count_messages(queue: Any, which: str) -> int:
    """moto's ``ApproximateNumberOfMessages*`` counts in one pass with one clock reading (not one per message)."""
    now = time.time() * 1000.0
    if which == "delayed":
        return sum(1 for m in queue._messages if now < m.delayed_until)
    if which == "not_visible":
        return sum(1 for m in queue._messages if not now > m.visible_at)
    return len(_visible_messages(queue))


def _visible_messages(queue: Any) -> list[Any]:
    now = time.time() * 1000.0
    return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]


def _within_retention(self: Any, queue_name: str, message: Any) -> bool:
    """moto's retention check, reading only ``MessageRetentionPeriod``."""
    queue = self.get_queue(queue_name)
    return bool(int(queue.message_retention_period) + message.sent_timestamp / 1000 > time.time())


def speed_up_moto() -> None:
    """Replace moto's per-request scans with lookups (same answers; see the module notes)."""
    import inspect

    from moto import backends
    from moto.core import responses
    from moto.iot.exceptions import ResourceNotFoundException
    from moto.iot.models import IoTBackend
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = frozenset(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]

    by_host = functools.lru_cache(maxsize=256)(DomainDispatcherApplication.get_backend_for_host)
    DomainDispatcherApplication.get_backend_for_host = by_host  # type: ignore[method-assign]

    @functools.lru_cache(maxsize=None)
    def method_names(clazz: type) -> frozenset[str]:
        return frozenset(name for name, _ in inspect.getmembers(clazz, predicate=inspect.isfunction))

    responses.method_names_from_class = method_names  # type: ignore[assignment]

    @functools.wraps(IoTBackend.describe_thing)
    def describe_thing(self: Any, thing_name: str) -> Any:
        thing = thing_by_name(self, thing_name)
        if thing is None:
            raise ResourceNotFoundException()
        return thing

    scan_principal = IoTBackend._get_principal

    @functools.wraps(scan_principal)
    def get_principal(self: Any, principal_arn: str) -> Any:
        if ":cert/" in principal_arn:
            cert = self.certificates.get(principal_arn.rsplit(":cert/", 1)[1])
            if cert is None or cert.arn != principal_arn:
                raise ResourceNotFoundException()
            return cert
        return scan_principal(self, principal_arn)

    IoTBackend.describe_thing = describe_thing  # type: ignore[method-assign]
    IoTBackend._get_principal = get_principal  # type: ignore[method-assign]


class _SameTable:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend: a table is not copied."""

    def __init__(self, table_class: type) -> None:
        import copy

        self._table_class = table_class
        self._deepcopy = copy.deepcopy

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, self._table_class) else self._deepcopy(value, memo)


def item_level_rollback(transact_write_items: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``transact_write_items``, rolled back item by item instead of from whole-table copies."""
    import copy

    @functools.wraps(transact_write_items)
    def transact(self: Any, transact_items: Any) -> Any:
        saved = [(table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key)))
                 for table, hash_key, range_key in transaction_items(self, transact_items)]
        try:
            return transact_write_items(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(saved):
                if item is None:
                    table.delete_item(hash_key, range_key)
                elif range_key is None:
                    table.items[hash_key] = item
                else:
                    table.items[hash_key][range_key] = item
            raise

    return transact


#: moto's item size limit (``LimitedSizeDict.__setitem__``: "between 409 and 410KB" measured, 405000 kept).
ITEM_SIZE_LIMIT = 405000


def one_pass_item(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    """moto's ``Item.__init__``, its attributes set in one pass and the size limit checked once."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    self.hash_key = hash_key
    self.range_key = range_key
    values = {key: DynamoType(value) for key, value in attrs.items()}
    if sum(bytesize(key) + value.size() for key, value in values.items()) > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge
    self.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.update(self.attrs, values)


#: Distinct update expression texts whose trees are kept (thingpress writes about twenty).
PARSED_EXPRESSIONS = 512


def parsed_once(make: Callable[[str], Any]) -> Callable[[str], Any]:
    """moto's ``UpdateExpressionParser.make`` (a bound classmethod), its tree kept per expression text.
    A text moto refuses is parsed, and refused, each time."""
    return functools.wraps(make)(functools.lru_cache(maxsize=PARSED_EXPRESSIONS)(make))


def walked_once(traverse: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """moto's ``DepthFirstTraverser.traverse``: the same depth-first walk, children before their
    parent, each node of the traverser's types replaced by what ``process`` returns; the types
    read once per walk instead of once per node."""
    from moto.dynamodb.parsing.ast_nodes import Node

    @functools.wraps(traverse)
    def walk(self: Any, node: Any) -> Any:
        kinds = self.nodes_to_be_processed()
        process, before_child = self.process, self.pre_processing_of_child

        def visit(node: Any, child_id: int) -> Any:
            if isinstance(node, Node):
                parent = node.parent
                if node.children is not None:
                    for i, child in enumerate(node.children):
                        before_child(node, i)
                        visit(child, i)
                if isinstance(node, kinds):
                    node = process(node)
                    node.parent = parent
                    if parent:
                        parent.children[child_id] = node
            return node

        return visit(node, -1)

    return walk


def install() -> None:
    """The same answers at less cost: SQS clock and counts, lookups by key, item-level rollback, items
    built in one pass, update expressions parsed once and walked without rebuilding their rules."""
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.sqs import models as sqs_models
    from moto.sqs.models import Queue, SQSBackend

    sqs_models.unix_time = _unix_time
    sqs_models.unix_time_millis = _unix_time_millis
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]
    Queue.messages = property(_visible_messages)  # type: ignore[assignment]
    Queue.approximate_number_of_messages = property(lambda q: _count_messages(q, "visible"))  # type: ignore[assignment]
    Queue.approximate_number_of_messages_not_visible = property(lambda q: _count_messages(q, "not_visible"))  # type: ignore[assignment]
    Queue.approximate_number_of_messages_delayed = property(lambda q: _count_messages(q, "delayed"))  # type: ignore[assignment]
    speed_up_moto()
    dynamodb_models.copy = _SameTable(Table)  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = item_level_rollback(DynamoDBBackend.transact_write_items)  # type: ignore[method-assign]
    Item.__init__ = one_pass_item  # type: ignore[method-assign]
    UpdateExpressionParser.make = staticmethod(parsed_once(UpdateExpressionParser.make))  # type: ignore[method-assign]
    DepthFirstTraverser.traverse = walked_once(DepthFirstTraverser.traverse)  # type: ignore[method-assign]
