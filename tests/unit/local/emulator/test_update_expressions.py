"""Update expressions parsed once and walked without rebuilding their rules
(thingpress_cli.local.emulator.speed.parsed_once, walked_once): every ``UpdateItem`` answers as
moto's own code answers it, the item and the refusal alike, at a quarter less CPU."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aws_fixtures
import pytest
from aws_fixtures import create_audit_table, in_process_aws
from botocore.exceptions import ClientError
from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.dynamodb.parsing.tokens import ExpressionTokenizer

KEY = {"pk": {"S": "M#m"}, "sk": {"S": "summary"}}
ROW = {**KEY, "state": {"S": "running"}, "imported": {"N": "3"}, "tags": {"SS": ["a", "b"]},
       "doc": {"M": {"k": {"L": [{"S": "v"}]}}}, "label": {"S": "x"}}

#: (UpdateExpression, names, values, ConditionExpression): what thingpress writes, and what DynamoDB refuses.
UPDATES: list[tuple[str, dict[str, str], dict[str, Any], str | None]] = [
    ("ADD imported :one, failed :zero SET updated_at = :now, #s = :st", {"#s": "state"},
     {":one": {"N": "1"}, ":zero": {"N": "0"}, ":now": {"S": "t1"}, ":st": {"S": "running"}}, "attribute_exists(pk)"),
    ("ADD imported :one, failed :zero SET updated_at = :now, #s = :st", {"#s": "state"},  # the same text, other values
     {":one": {"N": "5"}, ":zero": {"N": "2"}, ":now": {"S": "t2"}, ":st": {"S": "done"}}, None),
    ("SET attempts = if_not_exists(attempts, :zero) + :one, history = list_append(if_not_exists(history, :empty), :h)",
     {}, {":zero": {"N": "0"}, ":one": {"N": "1"}, ":empty": {"L": []}, ":h": {"L": [{"S": "h1"}]}}, None),
    ("SET doc.k[0] = :v, doc.n = :n REMOVE label DELETE tags :gone", {},
     {":v": {"S": "w"}, ":n": {"N": "7"}, ":gone": {"SS": ["a"]}}, None),
    ("SET #s = :st", {"#s": "state"}, {":st": {"S": "stalled"}, ":other": {"S": "idle"}}, "#s = :other"),  # condition fails
    ("SET sk = :v", {}, {":v": {"S": "other"}}, None),  # a key attribute
    ("SET a = :v, a.b = :v", {}, {":v": {"S": "x"}}, None),  # overlapping paths
    ("SET a = :missing, b = :v", {}, {":v": {"S": "x"}}, None),  # an undefined value
    ("ADD updated_at :one", {}, {":one": {"N": "1"}}, None),  # ADD to a string
    ("SET a = = :v", {}, {":v": {"S": "x"}}, None),  # syntax
]


@pytest.fixture
def ddb() -> Iterator[Any]:
    with in_process_aws():  # the emulator's patch set, applied (once per process)
        client = aws_fixtures.client("dynamodb")
        create_audit_table(client, "updates")
        yield client


def answers(ddb: Any) -> list[Any]:
    """Each update of UPDATES in turn on one row (and on a row not yet there): the item after it, or its refusal."""
    ddb.put_item(TableName="updates", Item=ROW)
    seen: list[Any] = []
    for sk in ("summary", "absent"):
        for expression, names, values, condition in UPDATES:
            request = {"TableName": "updates", "Key": {**KEY, "sk": {"S": sk}}, "UpdateExpression": expression,
                       "ExpressionAttributeValues": values, "ReturnValues": "ALL_NEW",
                       **({"ExpressionAttributeNames": names} if names else {}),
                       **({"ConditionExpression": condition} if condition else {})}
            try:
                seen.append(ddb.update_item(**request)["Attributes"])
            except ClientError as error:
                seen.append((error.response["Error"]["Code"], error.response["Error"]["Message"]))
        seen.append(ddb.get_item(TableName="updates", Key={**KEY, "sk": {"S": sk}}).get("Item"))
    return seen


def test_every_update_answers_as_moto_does(ddb, monkeypatch):
    patched = answers(ddb)
    ddb.delete_item(TableName="updates", Key=KEY)
    ddb.delete_item(TableName="updates", Key={**KEY, "sk": {"S": "absent"}})
    with monkeypatch.context() as moto:
        moto.setattr(UpdateExpressionParser, "make", staticmethod(UpdateExpressionParser.make.__wrapped__))
        moto.setattr(DepthFirstTraverser, "traverse", DepthFirstTraverser.traverse.__wrapped__)
        own = answers(ddb)

    assert patched == own
    refusals = [answer for answer in patched if isinstance(answer, tuple)]
    assert len(refusals) == 14  # six on each row; on the absent one, the first update's condition and the nested path
    assert patched[5][1].endswith("Cannot update attribute sk. This attribute is part of the key")
    assert patched[7][1].endswith("attribute value: :missing") and "Syntax error" in patched[9][1]
    assert patched[1]["imported"] == {"N": "9"} and patched[1]["state"] == {"S": "done"}  # values are not kept with the text
    assert patched[3]["doc"] == {"M": {"k": {"L": [{"S": "w"}]}, "n": {"N": "7"}}} and "label" not in patched[3]


def test_an_expression_is_parsed_once_and_each_walk_reads_its_rules_once(ddb, monkeypatch):
    """moto tokenized each text twice per call and rebuilt a traverser's rules on every node it visited."""
    tokenized, rules = [], []
    tokenize, read_rules = ExpressionTokenizer.make_list, DepthFirstTraverser.nodes_to_be_processed
    monkeypatch.setattr(ExpressionTokenizer, "make_list",
                        staticmethod(lambda text: tokenized.append(text) or tokenize(text)))
    monkeypatch.setattr(DepthFirstTraverser, "nodes_to_be_processed", lambda self: rules.append(1) or read_rules(self))
    ddb.put_item(TableName="updates", Item=ROW)
    expression, names, values, _ = UPDATES[0]
    expression = expression.replace("SET", "SET parsed_once = :now,")  # a text no other test parses

    for _ in range(5):
        ddb.update_item(TableName="updates", Key=KEY, UpdateExpression=expression,
                        ExpressionAttributeNames=names, ExpressionAttributeValues=values)

    assert tokenized.count(expression) == 1  # moto's: 10, twice per call
    assert len(rules) == 5 * 10  # ten traversers per validation; moto's: once per node, over 150 per traverser
