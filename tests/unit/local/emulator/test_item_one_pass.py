"""moto's ``Item`` built in one pass (thingpress_cli.local.emulator.speed.one_pass_item): the same item and the same
size limit as moto's attribute-by-attribute build, in linear time."""

from __future__ import annotations

import aws_fixtures
import pytest
from aws_fixtures import create_audit_table, in_process_aws
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

from thingpress_cli.local.emulator import speed

ROW = {"pk": {"S": "M#m"}, "sk": {"S": "C#" + "f" * 64}, "position": {"N": "7"}, "ok": {"BOOL": True},
       "tags": {"SS": ["a", "b"]}, "doc": {"M": {"k": {"L": [{"S": "v"}, {"N": "1"}]}}}, "nothing": {"NULL": True},
       **{f"a{i}": {"S": "x" * i} for i in range(10)}}


def moto_build(attrs: dict) -> LimitedSizeDict:
    """moto's own build: attribute by attribute, each checked against the limit."""
    built = LimitedSizeDict()
    for key, value in attrs.items():
        built[key] = DynamoType(value)
    return built


@pytest.fixture(autouse=True)
def _patched():
    with in_process_aws():  # the emulator's patch set, applied (once per process)
        yield


def test_the_item_is_moto_s_item():
    item = Item(DynamoType(ROW["pk"]), DynamoType(ROW["sk"]), ROW)

    assert Item.__init__ is speed.one_pass_item  # the emulator's patches are installed in-process
    assert type(item.attrs) is LimitedSizeDict and dict(item.attrs) == dict(moto_build(ROW))
    assert item.to_json() == {"Attributes": ROW}


def test_building_an_item_walks_each_attribute_once(monkeypatch):
    """moto's build walked every attribute already set for each one it added: 17 attributes, 150+ walks."""
    walks = []
    original = DynamoType.size
    monkeypatch.setattr(DynamoType, "size", lambda self: walks.append(1) or original(self))

    Item(DynamoType(ROW["pk"]), DynamoType(ROW["sk"]), ROW)
    one_pass = len(walks)
    walks.clear()
    moto_build(ROW)

    assert one_pass < 2 * len(ROW) < len(walks)


@pytest.mark.parametrize(("extra", "refused"), [(speed.ITEM_SIZE_LIMIT - 1000, False),
                                                 (speed.ITEM_SIZE_LIMIT + 10, True)])
def test_the_size_limit_is_moto_s(extra, refused):
    ddb = aws_fixtures.client("dynamodb")
    create_audit_table(ddb, "limit")
    item = {"pk": {"S": "a"}, "sk": {"S": "b"}, "big": {"S": "x" * extra}}
    if refused:
        with pytest.raises(ddb.exceptions.ClientError, match="Item size has exceeded"):
            ddb.put_item(TableName="limit", Item=item)
    else:
        ddb.put_item(TableName="limit", Item=item)
        assert ddb.get_item(TableName="limit", Key={"pk": {"S": "a"}, "sk": {"S": "b"}})["Item"] == item
