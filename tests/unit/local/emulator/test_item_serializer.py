"""DynamoDB items serialized directly (:mod:`thingpress_cli.local.emulator.item_serializer`): byte for
byte the response moto's generic serializer writes.

Hypothesis puts items of every attribute type (strings, numbers, booleans, null, string and number
sets, nested maps and lists, and binaries, which the generic serializer keeps writing), then reads
them back (``GetItem``, ``Query``, ``BatchGetItem``) with the patch and with moto's own
``_serialize_type_structure``, and compares the HTTP bodies.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.core.serialize import BaseJSONSerializer

from thingpress_cli.local.emulator import item_serializer

_names = itertools.count()
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
NUMBERS = st.one_of(st.integers(-10**6, 10**6).map(str), st.decimals(-1000, 1000, places=3).map(str))
SCALARS = st.one_of(
    TEXT.map(lambda s: {"S": s}), NUMBERS.map(lambda n: {"N": n}), st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}), st.binary(max_size=8).map(lambda b: {"B": b}),
    st.sets(TEXT, min_size=1, max_size=3).map(lambda s: {"SS": sorted(s)}),
    st.sets(st.integers(-99, 99).map(str), min_size=1, max_size=3).map(lambda s: {"NS": sorted(s)}),
    st.sets(st.binary(min_size=1, max_size=4), min_size=1, max_size=2).map(lambda s: {"BS": sorted(s)}))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.dictionaries(TEXT.filter(bool), inner, max_size=3).map(lambda m: {"M": m}),
    st.lists(inner, max_size=3).map(lambda v: {"L": v})), max_leaves=8)
ITEMS = st.dictionaries(st.sampled_from(["a", "b", "state", "n", "deep"]), VALUES, max_size=4)


@pytest.fixture(scope="module")
def dynamodb(dynamodb: Any) -> Any:
    """The emulator tests' DynamoDB client (conftest), keeping the body of every response it gets."""
    bodies: list[bytes] = []
    dynamodb.meta.events.register("after-call.dynamodb.*",
                                  lambda http_response, **_: bodies.append(http_response.content))
    dynamodb.bodies = bodies
    return dynamodb


def bodies(client: Any, table: str, keys: list[dict[str, Any]]) -> list[bytes]:
    client.bodies.clear()
    for key in keys:
        client.get_item(TableName=table, Key=key)
    client.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}})
    client.batch_get_item(RequestItems={table: {"Keys": keys}})
    return list(client.bodies)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(ITEMS, min_size=1, max_size=4))
def test_items_are_written_byte_for_byte_as_moto_writes_them(dynamodb, items):
    table = f"serializer-{next(_names)}"
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                {"AttributeName": "sk", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                     {"AttributeName": "sk", "KeyType": "RANGE"}])
    try:
        keys = [{"pk": {"S": "p"}, "sk": {"S": f"s{n}"}} for n in range(len(items))]
        for key, item in zip(keys, items, strict=True):
            dynamodb.put_item(TableName=table, Item={**item, **key})
        patched = bodies(dynamodb, table, keys)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(BaseJSONSerializer, "_serialize_type_structure",
                          BaseJSONSerializer._serialize_type_structure.__wrapped__)
            generic = bodies(dynamodb, table, keys)
        assert patched == generic
    finally:
        dynamodb.delete_table(TableName=table)


def test_binaries_and_odd_values_go_the_generic_way():
    assert item_serializer.wire_value({"M": {"a": {"S": "x"}, "b": {"L": [{"N": "1"}, {"NULL": True}]}}}) == \
        {"M": {"a": {"S": "x"}, "b": {"L": [{"N": "1"}, {"NULL": True}]}}}
    for odd in ({"B": b"x"}, {"BS": [b"x"]}, {"M": {"a": {"B": b"x"}}}, {"S": 1}, {"S": "x", "N": "1"}, {"X": "1"}):
        with pytest.raises(item_serializer._Generic):
            item_serializer.wire_value(odd)
