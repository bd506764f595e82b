"""``Query`` reads its key range, as AWS's does, not the whole table: the same answers at the cost AWS has.

AWS (DynamoDB API Reference, Query,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html): "You must provide the
name of the partition key attribute and a single value for that attribute. Query returns all items
with that partition key value. Optionally, you can provide a sort key attribute and use a comparison
operator to refine the search results." The developer guide ("Key condition expressions for the
Query operation",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.KeyConditionExpressions.html):
"For items with a given partition key value, DynamoDB stores these items close together, in sorted
order by sort key value. In a Query operation, DynamoDB retrieves the items in sorted order, and then
processes the items using KeyConditionExpression and any FilterExpression". So a Query costs what its
key range holds (``ScannedCount`` counts the items "that matched the key condition expression",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Other.html#Query.Count), and a
Query of a global secondary index what that index holds under its partition key value.

moto 5.2's ``Table.query`` starts every Query, of the table or of an index, from ``Table.all_items()``:
every item of the table, sorted (Python comparisons of ``DynamoType``), then filtered by the key
condition. At the audit table of a million certificate rows one summary read (``pk = M#<id> AND sk
BETWEEN ...``, 17 items) took seconds, and ``thingpress status`` reads one per manifest plus one
``by_state`` Query per state: an emulator cost AWS does not have.

The patch gives moto's own ``Table.query`` a narrower ``all_items()`` for the one call: the items the
key condition can match, in ``all_items`` order; moto then sorts, compares, pages, limits, filters
and projects them exactly as before (a superset of the matches gives the same answer, since moto
keeps only what matches):

* **a table Query** (no ``IndexName``): the items of the one partition; with a sort-key condition
  (``=``, ``<``, ``<=``, ``>``, ``>=``, ``BETWEEN``, ``begins_with`` on a string) and an
  ``ExclusiveStartKey``, only the stretch of sort keys they can match, found by bisection in the
  partition's sort keys kept in order (:class:`Partition`: the order is computed again after a key is
  added or removed). Sort keys of type B, or of mixed types, take the whole partition;
* **an index Query**: the items whose index partition key attribute equals the value asked for, from a
  map value -> items (:class:`_ByValue`) built in one pass on the first such Query and then kept
  current by the writes themselves: every item a table's partitions take, replace or give up, and
  every ``UpdateItem`` (moto's one path that changes an item's attributes in place), moves the item
  to the group of its value. Rebuilt after any write, the map cost a pass over the whole table per
  index Query, and the provider's admission reads the ``by_state`` index once per chunk while outcome
  rows are written: a put and a lagged ``by_state`` Query took 24.1 ms of CPU at 100,000 rows, 5.4
  ms kept current (5.2 and 3.4 ms at 20,000).

What keeps that exact: moto's items live in ``Table.items`` (partition key -> sort key -> ``Item``). A
table's ``items`` is made a :class:`Partitions` of :class:`Partition` (dicts that report every change
made through them to their table's maps, and keep no copy). A change no map can follow (a partition
that is not one of its table's, a bulk ``update``/``clear``, an ``UpdateItem`` whose item cannot be
found) counts as *unaccounted* (:data:`CHANGES`) and every map is built again at its next Query.
A lagged index read (:mod:`.index_lag`: the table's items with those written within the lag put back
as they were, for one request) is the table's map with those items swapped. A table whose ``items``
is something else (built before the patch) is answered by moto's code unchanged for an index Query,
and from its partition (sorted each time) for a table Query.
"""

from __future__ import annotations

import bisect
import functools
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from thingpress_cli.local.emulator.guard import Patched

PATCHED = (
    Patched("moto.dynamodb.models.table", "Table.__init__",
            ("self", "table_name", "account_id", "region", "schema", "attr", "throughput", "billing_mode",
             "indexes", "global_indexes", "streams", "sse_specification", "tags", "deletion_protection_enabled",
             "warm_throughput")),
    Patched("moto.dynamodb.models.table", "Table.items", instance=True),
    Patched("moto.dynamodb.models.table", "Table.all_items", ("self",)),
    Patched("moto.dynamodb.models.table", "Table.query",
            ("self", "hash_key", "range_comparison", "range_objs", "limit", "exclusive_start_key",
             "scan_index_forward", "projection_expressions", "index_name", "consistent_read", "filter_expression",
             "hash_key_conditions", "range_key_conditions", "filter_kwargs")),
    Patched("moto.dynamodb.models", "DynamoDBBackend.update_item",
            ("self", "table_name", "key", "update_expression", "expression_attribute_names",
             "expression_attribute_values", "attribute_updates", "expected", "condition_expression",
             "return_values_on_condition_check_failure")),
)

#: sort-key types whose order is their cast value's (str, Decimal), so a key range can be bisected.
ORDERED_TYPES = frozenset({"S", "N"})
_STRING_VALUE = operator.attrgetter("value")


def _NUMBER_VALUE(key: Any) -> Decimal:  # noqa: N802 -- a key function, like _STRING_VALUE
    return Decimal(key.value)


class _Changes:
    """Changes to any table's items that no :class:`_ByValue` could follow (read by each to know it is current)."""

    unaccounted = 0

    @classmethod
    def bump(cls) -> None:
        cls.unaccounted += 1


CHANGES = _Changes


class Partition(dict):
    """One partition's items by sort key (moto's inner dict), with its sort keys in order, computed once.

    ``order`` is ``(cast values, keys)`` both in sort-key order, or None until asked for again: any
    key added or removed drops it (replacing an item under its key keeps it). ``owner``: the
    :class:`Partitions` it is a partition of, told of every item it takes or gives up; a change
    without one counts in :data:`CHANGES`.
    """

    order: tuple[list[Any], list[Any]] | None = None
    owner: Partitions | None = None

    def _moved(self, old: Any, new: Any) -> None:
        if self.owner is None:
            CHANGES.bump()
        else:
            self.owner.moved(old, new)

    def __setitem__(self, key: Any, value: Any) -> None:
        if key not in self:
            self.order = None
        old = dict.get(self, key)
        dict.__setitem__(self, key, value)
        self._moved(old, value)

    def __delitem__(self, key: Any) -> None:
        self.order = None
        old = dict.__getitem__(self, key)
        dict.__delitem__(self, key)
        self._moved(old, None)

    def pop(self, key: Any, *default: Any) -> Any:
        self.order = None
        present = key in self
        value = dict.pop(self, key, *default)
        if present:
            self._moved(value, None)
        return value

    def popitem(self) -> Any:
        self.order = None
        key, value = dict.popitem(self)
        self._moved(value, None)
        return key, value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.order = None
        CHANGES.bump()
        dict.update(self, *args, **kwargs)

    def clear(self) -> None:
        self.order = None
        CHANGES.bump()
        dict.clear(self)

    def __ior__(self, other: Any) -> Partition:
        self.update(other)
        return self

    def __reduce__(self) -> Any:
        """Copies (``copy``, ``deepcopy``, pickle) are a partition of the same items, order computed anew,
        owned by no table (their changes are unaccounted)."""
        return type(self), (dict(self),)

    def sorted_keys(self) -> tuple[list[Any], list[Any]] | None:
        """``(cast values, keys)`` in sort-key order when every key is one of :data:`ORDERED_TYPES`, else None."""
        if self.order is None:
            keys = list(self)
            types = {key.type for key in keys}
            if len(types) > 1 or not types <= ORDERED_TYPES:
                return None
            # DynamoType orders by its cast value: a string's own value, a number's Decimal
            cast = _STRING_VALUE if types == {"S"} else _NUMBER_VALUE
            keys.sort(key=cast)
            self.order = (list(map(cast, keys)), keys)
        return self.order


class Partitions(defaultdict):
    """moto's ``Table.items`` (partition key -> :class:`Partition`, or -> ``Item`` without a sort key),
    telling its maps by value (``by_value``: attribute -> :class:`_ByValue`) of every item it, or one of
    its partitions, takes or gives up (an empty partition made by a lookup changes no item).

    A shallow copy is a *view* (``view_of``: the items it copies): what is changed on it changes no
    table and is reported to no map. :mod:`.index_lag` makes one per lagged index read, with
    ``replaced`` (:func:`as_past`): the items it put back, by key, so that an index Query of the view
    is the table's map with those few items swapped (:func:`_view_candidates`).
    """

    view_of: Partitions | None = None
    replaced: dict[tuple[Any, Any], Any] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.by_value: dict[str, _ByValue] = {}

    def moved(self, old: Any, new: Any) -> None:
        """``old`` left the table and ``new`` came in (either may be None): every map follows."""
        for by_value in self.by_value.values():
            if old is not None:
                by_value.discard(old)
            if new is not None:
                by_value.add(new)

    def _swapped(self, old: Any, new: Any) -> None:
        """The value under a partition key went from ``old`` to ``new`` (a partition, an item, or None)."""
        if self.view_of is not None:
            return
        if isinstance(new, Partition):
            new.owner = self
        elif isinstance(new, dict) and new:
            CHANGES.bump()  # a partition that cannot report its changes
        for item in _items_of(old):
            self.moved(item, None)
        for item in _items_of(new):
            self.moved(None, item)

    def __setitem__(self, key: Any, value: Any) -> None:
        old = dict.get(self, key)
        defaultdict.__setitem__(self, key, value)
        self._swapped(old, value)

    def __delitem__(self, key: Any) -> None:
        old = dict.__getitem__(self, key)
        defaultdict.__delitem__(self, key)
        self._swapped(old, None)

    def pop(self, key: Any, *default: Any) -> Any:
        present = key in self
        value = defaultdict.pop(self, key, *default)
        if present:
            self._swapped(value, None)
        return value

    def popitem(self) -> Any:
        key, value = defaultdict.popitem(self)
        self._swapped(value, None)
        return key, value

    def update(self, *args: Any, **kwargs: Any) -> None:
        if self.view_of is None:
            CHANGES.bump()
        defaultdict.update(self, *args, **kwargs)

    def clear(self) -> None:
        if self.view_of is None:
            CHANGES.bump()
        defaultdict.clear(self)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def __ior__(self, other: Any) -> Partitions:
        self.update(other)
        return self

    def __reduce__(self) -> Any:
        return type(self), (Partition, {key: value for key, value in self.items()})

    def __copy__(self) -> Partitions:
        view = type(self)(Partition, self)
        view.view_of = self
        return view


def _items_of(value: Any) -> list[Any]:
    """The items under one partition key: a partition's, the one item of a table without a sort key, or none."""
    if value is None:
        return []
    return list(dict.values(value)) if isinstance(value, dict) else [value]


def as_past(view: Any, before: dict[tuple[Any, Any], Any]) -> None:
    """Note on ``view`` (a copy of a table's items, :mod:`.index_lag`) the items it put back: (hash key, range
    key or None) -> the item as it was, or None where the item did not exist."""
    if isinstance(view, Partitions) and view.view_of is not None:
        view.replaced = dict(before)


class _ByValue:
    """A table's items by the value of one attribute (an index's partition key), kept current by the
    table's :class:`Partitions` (``moved``) and :func:`counting_updates`.

    ``items``: the ``Table.items`` it was built from (kept, so that identity cannot be reused);
    ``unaccounted``: :data:`CHANGES` then; ``groups``: value -> items (by identity); ``others``: items
    whose value is not hashable (a list, a map: never equal to a key value), offered to every Query;
    ``where``: each item's place (its value, or :data:`_OTHERS`).
    """

    def __init__(self, items: Partitions, attribute: str) -> None:
        self.items, self.attribute, self.unaccounted = items, attribute, CHANGES.unaccounted
        self.groups: dict[Any, dict[int, Any]] = {}
        self.others: dict[int, Any] = {}
        self.where: dict[int, Any] = {}
        for item in _every_item(items):
            self.add(item)

    def add(self, item: Any) -> None:
        self.discard(item)
        place = _place(item, self.attribute)
        if place is None:
            return
        (self.others if place is _OTHERS else self.groups.setdefault(place, {}))[id(item)] = item
        self.where[id(item)] = place

    def discard(self, item: Any) -> None:
        value = self.where.pop(id(item), None)
        if value is None:
            return
        group = self.others if value is _OTHERS else self.groups[value]
        del group[id(item)]
        if not group and value is not _OTHERS:
            del self.groups[value]

    def current(self, items: Any) -> bool:
        return self.items is items and self.unaccounted == CHANGES.unaccounted


#: the place of an item whose value cannot be a key (:class:`_ByValue`).
_OTHERS = object()


def _place(item: Any, attribute: str) -> Any:
    """Where ``item`` goes in a map by ``attribute``: its value, :data:`_OTHERS` when the value cannot be a
    key (a list, a map: offered to every Query), or None without one."""
    value = item.attrs.get(attribute)
    if value is None:
        return None
    try:
        hash(value)
    except TypeError:
        return _OTHERS
    return value


def _every_item(items: Any) -> Iterable[Any]:
    for partition in items.values():
        if isinstance(partition, dict):
            yield from partition.values()
        else:
            yield partition


def _all_items_order(items: list[Any]) -> list[Any]:
    """``items`` in the order of moto's ``Table.all_items``."""
    return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


#: comparison (as moto passes it, expression or KeyConditions form) -> the bounds it sets:
#: (lower bound from value index, inclusive?), (upper bound from value index, inclusive?)
_BOUNDS: dict[str, tuple[tuple[int, bool] | None, tuple[int, bool] | None]] = {
    "=": ((0, True), (0, True)), "EQ": ((0, True), (0, True)),
    "<": (None, (0, False)), "LT": (None, (0, False)),
    "<=": (None, (0, True)), "LE": (None, (0, True)),
    ">": ((0, False), None), "GT": ((0, False), None),
    ">=": ((0, True), None), "GE": ((0, True), None),
    "BETWEEN": ((0, True), (1, True)),
}
#: moto refuses an item over 405,000 bytes (``LimitedSizeDict``); twice that, for margin: a page that
#: holds at most ``RESULT_SIZE_LIMIT`` minus this cannot be ended by the size of an item past its range.
ITEM_BYTES_BOUND = 2 * 405_000


def _key_range(table: Any, partition: Partition, hash_key: Any, range_comparison: str | None, range_objs: list[Any],
               exclusive_start_key: dict[str, Any] | None,
               scan_index_forward: bool) -> tuple[list[Any], int, int] | None:
    """``(sort keys in order, lo, hi)``: exactly the keys ``keys[lo:hi]`` moto keeps for the condition and
    the start key; None when the order cannot be bisected (moto then reads the whole partition)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    order = partition.sorted_keys()
    if order is None:
        return None
    values, keys = order
    if not keys:
        return keys, 0, 0
    kind = keys[0].type
    lo, hi = 0, len(keys)
    if range_comparison is not None:
        if any(getattr(obj, "type", None) != kind for obj in range_objs):
            return None
        bounds = _BOUNDS.get(range_comparison.upper())
        if bounds is not None:
            lower, upper = bounds
            if lower is not None:
                value = range_objs[lower[0]].cast_value
                lo = (bisect.bisect_left if lower[1] else bisect.bisect_right)(values, value)
            if upper is not None:
                value = range_objs[upper[0]].cast_value
                hi = (bisect.bisect_right if upper[1] else bisect.bisect_left)(values, value)
        elif range_comparison.upper() == "BEGINS_WITH" and kind == "S" and len(range_objs) == 1:
            prefix = range_objs[0].cast_value
            lo = hi = bisect.bisect_left(values, prefix)
            while hi < len(values) and values[hi].startswith(prefix):
                hi += 1
        else:
            return None
    if exclusive_start_key:
        # moto skips every item at or before the start key (in the order it reads): exactly these.
        start_hash = exclusive_start_key.get(table.hash_key_attr)
        start = exclusive_start_key.get(table.range_key_attr)
        if not (isinstance(start_hash, dict) and len(start_hash) == 1 and DynamoType(start_hash) == hash_key
                and isinstance(start, dict) and len(start) == 1 and next(iter(start)) == kind):
            return None
        value = DynamoType(start).cast_value
        if scan_index_forward is False:
            hi = min(hi, bisect.bisect_left(values, value))
        else:
            lo = max(lo, bisect.bisect_right(values, value))
    return keys, lo, max(lo, hi)


def _table_candidates(table: Any, hash_key: Any, range_comparison: str | None, range_objs: list[Any],
                      exclusive_start_key: dict[str, Any] | None, scan_index_forward: bool,
                      limit: int | None) -> list[Any]:
    """The items of a table Query's partition that moto reaches, in order.

    Within the key range moto keeps every item (each matches the condition) until the page is full
    (``limit`` items, or the next item would take it over ``RESULT_SIZE_LIMIT``): it reads one item
    past the last it returns, to see that. Past the range it reads on while an item could still fill
    the page: the next one (the page may hold ``limit`` items), then any while the page is within an
    item's size of ``RESULT_SIZE_LIMIT``. Those are the candidates (moto's own loop then decides).
    """
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT

    partition = dict.get(table.items, hash_key)
    if partition is None:
        return []
    if not isinstance(partition, dict):  # a table without a sort key: the one item
        return [partition]
    found = (_key_range(table, partition, hash_key, range_comparison, range_objs, exclusive_start_key,
                        scan_index_forward) if isinstance(partition, Partition) else None)
    if found is None:
        return _all_items_order(list(partition.values()))
    keys, lo, hi = found
    forward = scan_index_forward is not False
    taken: list[Any] = []
    count = size = 0
    for index in (range(lo, hi) if forward else range(hi - 1, lo - 1, -1)):
        item = dict.__getitem__(partition, keys[index])
        taken.append(item)
        item_size = item.size()
        if count == limit or size + item_size > RESULT_SIZE_LIMIT:
            break
        count, size = count + 1, size + item_size
    else:
        for index in (range(hi, len(keys)) if forward else range(lo - 1, -1, -1)):
            item = dict.__getitem__(partition, keys[index])
            taken.append(item)
            if count == limit or size + item.size() > RESULT_SIZE_LIMIT:
                break
            if size <= RESULT_SIZE_LIMIT - ITEM_BYTES_BOUND:  # no item further on can fill the page
                break
    return taken if forward else taken[::-1]


def _map(items: Partitions, attribute: str) -> _ByValue:
    """``items``' map by ``attribute``, built if it has none or missed a change; kept when every partition
    reports its changes to ``items`` (else it serves one Query)."""
    by_value = items.by_value.get(attribute)
    if by_value is None or not by_value.current(items):
        by_value = _ByValue(items, attribute)
        if all(isinstance(p, Partition) and p.owner is items or not isinstance(p, dict) for p in items.values()):
            items.by_value[attribute] = by_value
        else:
            items.by_value.pop(attribute, None)
    return by_value


def _index_candidates(table: Any, attribute: str, value: Any) -> list[Any] | None:
    """The items whose ``attribute`` equals ``value`` (plus any whose value cannot be a key), in
    ``all_items`` order; None when the table's items do not report their changes."""
    items = table.items
    if not isinstance(items, Partitions):
        return None
    try:
        hash(value)
    except TypeError:
        return None
    if items.view_of is not None and items.replaced is not None and items.view_of.view_of is None:
        return _all_items_order(_view_candidates(items, attribute, value))
    by_value = _map(items, attribute) if items.view_of is None else _ByValue(items, attribute)
    found = list(by_value.groups.get(value, {}).values())
    return _all_items_order(found + list(by_value.others.values()))


def _view_candidates(view: Partitions, attribute: str, value: Any) -> list[Any]:
    """A view's candidates: its table's, with the items the view put back in place of the table's."""
    base = view.view_of
    assert base is not None and view.replaced is not None
    by_value = _map(base, attribute)
    found = dict(by_value.groups.get(value, {}))
    others = dict(by_value.others)
    for (hash_key, range_key), past in view.replaced.items():
        now = dict.get(base, hash_key)
        if isinstance(now, dict):
            now = dict.get(now, range_key)
        if now is not None:
            found.pop(id(now), None)
            others.pop(id(now), None)
        place = None if past is None else _place(past, attribute)
        if place is _OTHERS:
            others[id(past)] = past
        elif place is not None and place == value:
            found[id(past)] = past
    return list(found.values()) + list(others.values())


def key_range_query(query: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``Table.query`` over the items its key condition can match instead of every item."""

    @functools.wraps(query)
    def ranged(self: Any, hash_key: Any, range_comparison: Any, range_objs: Any, limit: Any,
               exclusive_start_key: Any, scan_index_forward: Any, projection_expressions: Any,
               index_name: Any = None, consistent_read: bool = False, filter_expression: Any = None,
               hash_key_conditions: Any = None, range_key_conditions: Any = None, **filter_kwargs: Any) -> Any:
        candidates: list[Any] | None = None
        if index_name:
            if hash_key_conditions:
                attribute, value = hash_key_conditions[0]
                candidates = _index_candidates(self, attribute, value)
        elif (hash_key is not None and not filter_kwargs and (limit is None or limit >= 1)
              and not (range_key_conditions and len(range_key_conditions) > 1)):
            candidates = _table_candidates(self, hash_key, range_comparison, range_objs or [],
                                           exclusive_start_key, scan_index_forward, limit)
        args = (self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
                projection_expressions, index_name, consistent_read, filter_expression)
        kwargs = dict(hash_key_conditions=hash_key_conditions, range_key_conditions=range_key_conditions,
                      **filter_kwargs)
        if candidates is None:
            return query(*args, **kwargs)
        # moto's query reads its candidates from all_items(): these, for this one call (DynamoDB requests
        # run one at a time, .dynamodb.one_at_a_time, so no other request sees them)
        self.all_items = lambda: candidates
        try:
            return query(*args, **kwargs)
        finally:
            del self.all_items

    return ranged


def counting_updates(update_item: Callable[..., Any]) -> Callable[..., Any]:
    """``DynamoDBBackend.update_item`` followed by its table's maps: it changes an item's attributes in place
    (or puts a new one, which its partition reports), so the item moves to the group of its new value."""

    @functools.wraps(update_item)
    def counted(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return update_item(self, table_name, key, *args, **kwargs)
        finally:
            _refresh(self, table_name, key)

    return counted


def _refresh(backend: Any, table_name: str, key: dict[str, Any]) -> None:
    """The item at ``key`` put again in its table's maps, by its values now; unaccounted if it cannot be found."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        table = backend.get_table(table_name)
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        partition = dict.get(table.items, hash_key) if isinstance(table.items, Partitions) else None
        item = dict.get(partition, range_key) if isinstance(partition, dict) else partition
    except Exception:  # noqa: BLE001 -- moto refused the request: nothing this patch can follow
        CHANGES.bump()
        return
    if item is not None:
        table.items.moved(item, item)


def counting_items(init: Callable[..., Any]) -> Callable[..., Any]:
    """``Table.__init__`` with the table's ``items`` a :class:`Partitions` (moto makes it a defaultdict(dict))."""

    @functools.wraps(init)
    def made(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        items = Partitions(Partition, {key: Partition(value) if isinstance(value, dict) else value
                                       for key, value in self.items.items()})
        for partition in dict.values(items):
            if isinstance(partition, Partition):
                partition.owner = items
        self.items = items

    return made


def install() -> None:
    """Query reads its key range (see the module notes)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    Table.__init__ = counting_items(Table.__init__)  # type: ignore[method-assign]
    Table.query = key_range_query(Table.query)  # type: ignore[method-assign]
    DynamoDBBackend.update_item = counting_updates(DynamoDBBackend.update_item)  # type: ignore[method-assign]

