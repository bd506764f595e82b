"""A ``Query`` that reads only its key range (:mod:`thingpress_cli.local.emulator.query_range`) answers
exactly as moto's unpatched ``Table.query``, which reads every item of the table.

Hypothesis writes a table (puts, some of 300 KB, in-place updates alone or in a transaction, deletes,
transactions cancelled after their update, between the reads), then asks the
same Query twice through one boto3 client, once with the patch and once with moto's own function
(``Table.query.__wrapped__``), and compares every page: items, ``Count``, ``ScannedCount``,
``LastEvaluatedKey``. In half the scripts index reads lag (:mod:`.index_lag`, 500 ms on a manual clock
that each round moves on 0-1 s): an index Query then reads a view of the table with some items put
back as they were, which the patch answers from the table's map with those items swapped. The queries cover the table and a global secondary index, every sort-key
condition, ``ScanIndexForward``, ``Limit``, ``ExclusiveStartKey`` (every page followed), filter and
projection expressions, string and number sort keys.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from aws_fixtures import REGION
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table

from thingpress_cli.local.emulator import query_range

PARTITIONS = ["M#a", "M#b", "D#a"]
SORT_STRINGS = ["#SHARD#00", "#SHARD#01", "#SUMMARY", "C#0", "C#00", "C#1", "C#a", "R#000000001", "a", "b", "\u00e9"]
STATES = ["RECEIVED", "QUEUED", "COMPLETE"]
STAMPS = ["2026-12-01T00:00:00Z", "2026-12-01T00:00:01Z", "2026-12-02T00:00:00Z"]
_names = itertools.count()


def create(client: Any, sort_type: str) -> str:
    name = f"query-range-{next(_names)}"
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": sort_type},
                              {"AttributeName": "state", "AttributeType": "S"},
                              {"AttributeName": "updated_at", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "by_state",
                                 "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"},
                                               {"AttributeName": "updated_at", "KeyType": "RANGE"}],
                                 "Projection": {"ProjectionType": "ALL"}},
                                {"IndexName": "by_stamp",
                                 "KeySchema": [{"AttributeName": "updated_at", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "KEYS_ONLY"}}])
    return name


def sort_values(sort_type: str) -> st.SearchStrategy[str]:
    if sort_type == "S":
        return st.sampled_from(SORT_STRINGS)
    return st.sampled_from(["-1", "0", "1", "1.5", "2", "9", "10", "100"])


@st.composite
def writes(draw: Any, sort_type: str) -> dict[str, Any]:
    key = {"pk": {"S": draw(st.sampled_from(PARTITIONS))}, "sk": {sort_type: draw(sort_values(sort_type))}}
    kind = draw(st.sampled_from(["put", "put", "update", "transact", "cancelled", "delete"]))
    if kind == "delete":
        return {"delete": key}
    if kind in ("update", "transact", "cancelled"):
        return {kind: key, "state": draw(st.sampled_from(STATES)), "n": draw(st.integers(0, 3))}
    item = {**key, "n": {"N": str(draw(st.integers(0, 3)))}}
    if draw(st.integers(0, 5)) == 0:  # pages of 1 MB end on size, not only on Limit
        item["pad"] = {"S": "x" * 300_000}
    if draw(st.booleans()):
        item["state"] = {"S": draw(st.sampled_from(STATES))}
    if draw(st.booleans()):
        item["updated_at"] = {"S": draw(st.sampled_from(STAMPS))}
    return {"put": item}


COMPARISONS = ["=", "<", "<=", ">", ">=", "BETWEEN", "begins_with", None]


@st.composite
def queries(draw: Any, sort_type: str) -> dict[str, Any]:
    """One Query's parameters (without TableName), on the table or an index."""
    index = draw(st.sampled_from([None, None, "by_state", "by_stamp"]))
    values: dict[str, Any] = {}
    names = {}
    if index is None:
        condition, values[":h"] = "pk = :h", {"S": draw(st.sampled_from(PARTITIONS))}
        sort_name, sort_values_of = "sk", sort_values(sort_type)
        sort_kind = sort_type
    elif index == "by_state":
        condition, values[":h"] = "#s = :h", {"S": draw(st.sampled_from(STATES))}
        names["#s"] = "state"
        sort_name, sort_values_of, sort_kind = "updated_at", st.sampled_from(STAMPS), "S"
    else:
        condition, values[":h"] = "updated_at = :h", {"S": draw(st.sampled_from(STAMPS))}
        sort_name = None
    comparison = draw(st.sampled_from(COMPARISONS)) if sort_name else None
    if comparison == "begins_with" and sort_kind != "S":
        comparison = None
    if comparison == "BETWEEN":
        low, high = sorted([draw(sort_values_of), draw(sort_values_of)],
                           key=(float if sort_kind == "N" else str))
        values[":a"], values[":b"] = {sort_kind: low}, {sort_kind: high}
        condition += f" AND {sort_name} BETWEEN :a AND :b"
    elif comparison == "begins_with":
        values[":a"] = {"S": draw(st.sampled_from(["#", "#SHARD", "C#", "C#0", "R", "z", ""]).filter(bool))}
        condition += f" AND begins_with({sort_name}, :a)"
    elif comparison is not None:
        values[":a"] = {sort_kind: draw(sort_values_of)}
        condition += f" AND {sort_name} {comparison} :a"
    params: dict[str, Any] = {"KeyConditionExpression": condition, "ExpressionAttributeValues": values,
                              "ScanIndexForward": draw(st.booleans())}
    if index:
        params["IndexName"] = index
    if draw(st.booleans()):
        params["Limit"] = draw(st.integers(1, 4))
    if index != "by_stamp" and draw(st.booleans()):
        params["FilterExpression"] = "n >= :n"
        values[":n"] = {"N": str(draw(st.integers(0, 3)))}
    elif index is None and draw(st.booleans()):
        params["ProjectionExpression"] = "pk, sk, n"
    if names:
        params["ExpressionAttributeNames"] = names
    return params


def pages(client: Any, table: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of the Query, followed by its ``LastEvaluatedKey``."""
    found, kwargs = [], {"TableName": table, **params}
    for _ in range(100):
        page = client.query(**kwargs)
        found.append({k: page.get(k) for k in ("Items", "Count", "ScannedCount", "LastEvaluatedKey")})
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    raise AssertionError("more than 100 pages")


def unpatched(client: Any, table: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Table, "query", Table.query.__wrapped__)
        return pages(client, table, params)


def apply(client: Any, table: str, write: dict[str, Any]) -> None:
    if "put" in write:
        client.put_item(TableName=table, Item=write["put"])
    elif "delete" in write:
        client.delete_item(TableName=table, Key=write["delete"])
    else:
        update = {"TableName": table, "Key": write.get("update") or write.get("transact") or write["cancelled"],
                  "UpdateExpression": "SET #s = :s, n = :n", "ExpressionAttributeNames": {"#s": "state"},
                  "ExpressionAttributeValues": {":s": {"S": write["state"]}, ":n": {"N": str(write["n"])}}}
        if "update" in write:
            client.update_item(**update)
        elif "transact" in write:
            client.transact_write_items(TransactItems=[{"Update": update}])
        else:  # moto applies the update, then the failed check cancels it: the item is put back as it was
            check = {"TableName": table, "Key": {"pk": {"S": "nowhere"}, "sk": update["Key"]["sk"]},
                     "ConditionExpression": "attribute_exists(pk)"}
            with pytest.raises(client.exceptions.TransactionCanceledException):
                client.transact_write_items(TransactItems=[{"Update": update}, {"ConditionCheck": check}])


@st.composite
def scripts(draw: Any) -> tuple[str, bool, list[tuple[float, list[dict[str, Any]], list[dict[str, Any]]]]]:
    """A sort-key type, whether index reads lag, then rounds of (seconds on the clock, writes, queries)."""
    sort_type = draw(st.sampled_from(["S", "N"]))
    rounds = draw(st.lists(st.tuples(st.sampled_from([0.0, 0.2, 1.0]), st.lists(writes(sort_type), max_size=12),
                                     st.lists(queries(sort_type), min_size=1, max_size=4)),
                           min_size=1, max_size=3))
    return sort_type, draw(st.booleans()), rounds


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=scripts())
def test_a_patched_query_answers_exactly_as_moto_does(dynamodb, index_lag, script):
    sort_type, lagging, rounds = script
    index_lag.configure({"lag_ms": 500 if lagging else 0})
    table = create(dynamodb, sort_type)
    try:
        for seconds, written, asked in rounds:
            index_lag.clock.advance(seconds)
            for write in written:
                apply(dynamodb, table, write)
            for params in asked:
                assert pages(dynamodb, table, params) == unpatched(dynamodb, table, params), params
    finally:
        dynamodb.delete_table(TableName=table)


def test_a_summary_read_reads_its_key_range_not_the_partition(dynamodb, monkeypatch):
    """The read ``thingpress status`` makes per manifest (summary and shards) offers moto the 17 items
    of its key range and the one after it (moto reads one past the range), out of a partition of a
    thousand certificate rows and a table of two thousand; the ``by_state`` Query its one summary."""
    table = create(dynamodb, "S")
    try:
        rows = [{"pk": {"S": pk}, "sk": {"S": f"C#{n:04d}"}, "thing_name": {"S": f"t{n}"}}
                for pk in ("M#a", "M#b") for n in range(1000)]
        rows += [{"pk": {"S": "M#a"}, "sk": {"S": f"#SHARD#{n:02d}"}, "imported": {"N": "1"}} for n in range(16)]
        rows.append({"pk": {"S": "M#a"}, "sk": {"S": "#SUMMARY"}, "state": {"S": "QUEUED"},
                     "updated_at": {"S": STAMPS[0]}})
        for start in range(0, len(rows), 25):
            dynamodb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": r}} for r in rows[start:start + 25]]})
        offered: list[int] = []
        backend_table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[table]
        moto_query = Table.query.__wrapped__

        def counting(self, *args, **kwargs):
            offered.append(len(self.all_items()))
            return moto_query(self, *args, **kwargs)

        monkeypatch.setattr(Table, "query", query_range.key_range_query(counting))
        page = dynamodb.query(TableName=table, ConsistentRead=True,
                              KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :summary",
                              ExpressionAttributeValues={":pk": {"S": "M#a"}, ":first": {"S": "#SHARD#"},
                                                         ":summary": {"S": "#SUMMARY"}})
        assert (page["Count"], offered) == (17, [18])
        listed = dynamodb.query(TableName=table, IndexName="by_state", KeyConditionExpression="#s = :s",
                                ExpressionAttributeNames={"#s": "state"},
                                ExpressionAttributeValues={":s": {"S": "QUEUED"}})
        assert (listed["Count"], offered) == (1, [18, 1])
        assert isinstance(backend_table.items, query_range.Partitions)
    finally:
        dynamodb.delete_table(TableName=table)


@pytest.mark.parametrize("lag_ms", [0, 500])
def test_an_index_map_follows_every_write_without_reading_the_table_again(dynamodb, index_lag, monkeypatch, lag_ms):
    """The provider's admission reads ``by_state`` once per chunk while outcome rows are written: each index
    Query offers moto the items of its one state, from a map the writes keep current (no pass over the
    table's 500 other rows), and answers as moto's own query does, with index reads lagging or not."""
    index_lag.configure({"lag_ms": lag_ms})
    table = create(dynamodb, "S")
    summary = {"pk": {"S": "M#a"}, "sk": {"S": "#SUMMARY"}, "updated_at": {"S": STAMPS[0]}}
    try:
        for n in range(500):
            dynamodb.put_item(TableName=table, Item={"pk": {"S": "M#a"}, "sk": {"S": f"C#{n:04d}"}})
        for n, state in enumerate(STATES):
            dynamodb.put_item(TableName=table, Item={**summary, "sk": {"S": f"#SUMMARY{n}"}, "state": {"S": state}})
        index_lag.clock.advance(1.0)
        key = {"pk": summary["pk"], "sk": {"S": "#SUMMARY0"}}  # RECEIVED
        update = {"TableName": table, "Key": key, "UpdateExpression": "SET #s = :s",
                  "ExpressionAttributeNames": {"#s": "state"}}
        failing = {"ConditionCheck": {"TableName": table, "Key": {"pk": {"S": "nowhere"}, "sk": {"S": "x"}},
                                      "ConditionExpression": "attribute_exists(pk)"}}
        steps = [
            lambda: dynamodb.update_item(**update, ExpressionAttributeValues={":s": {"S": "QUEUED"}}),
            lambda: dynamodb.transact_write_items(TransactItems=[
                {"Update": {**update, "ExpressionAttributeValues": {":s": {"S": "COMPLETE"}}}}]),
            lambda: pytest.raises(dynamodb.exceptions.TransactionCanceledException, dynamodb.transact_write_items,
                                  TransactItems=[{"Update": {**update, "ExpressionAttributeValues": {
                                      ":s": {"S": "RECEIVED"}}}}, failing]),
            lambda: dynamodb.put_item(TableName=table, Item={**key, "updated_at": summary["updated_at"],
                                                             "state": {"S": "RECEIVED"}}),
            lambda: dynamodb.delete_item(TableName=table, Key={"pk": summary["pk"], "sk": {"S": "#SUMMARY1"}}),
        ]
        offered: list[int] = []
        moto_query = Table.query.__wrapped__

        def counting(self, *args, **kwargs):
            offered.append(len(self.all_items()))
            return moto_query(self, *args, **kwargs)

        built: list[str] = []

        class Built(query_range._ByValue):
            def __init__(self, items, attribute):
                built.append(attribute)
                super().__init__(items, attribute)

        monkeypatch.setattr(query_range, "_ByValue", Built)

        def listed(state: str) -> list[dict[str, Any]]:
            params = {"IndexName": "by_state", "KeyConditionExpression": "#s = :s",
                      "ExpressionAttributeNames": {"#s": "state"}, "ExpressionAttributeValues": {":s": {"S": state}}}
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(Table, "query", query_range.key_range_query(counting))
                found = pages(dynamodb, table, params)
            assert found == unpatched(dynamodb, table, params), (state, found)
            return [item["sk"]["S"] for page in found for item in page["Items"]]

        assert [listed(state) for state in STATES] == [["#SUMMARY0"], ["#SUMMARY1"], ["#SUMMARY2"]]
        unaccounted = query_range.CHANGES.unaccounted
        for step in steps:
            step()
            index_lag.clock.advance(1.0)  # past the lag: the index shows the write
        assert [listed(state) for state in STATES] == [["#SUMMARY0"], [], ["#SUMMARY2"]]
        assert query_range.CHANGES.unaccounted == unaccounted and built == ["state"]  # built once, then followed
        assert max(offered) <= 2  # the items of one state, never the table's 503
        if lag_ms:  # a write within the lag: the index still shows the item as it was
            dynamodb.update_item(**update, ExpressionAttributeValues={":s": {"S": "COMPLETE"}})
            assert [listed(state) for state in STATES] == [["#SUMMARY0"], [], ["#SUMMARY2"]]
            index_lag.clock.advance(1.0)
            assert [listed(state) for state in STATES] == [[], [], ["#SUMMARY0", "#SUMMARY2"]]
    finally:
        dynamodb.delete_table(TableName=table)
