"""``TransactWriteItems`` idempotent by its ``ClientRequestToken`` in the local cloud
(thingpress_cli.local.emulator.transaction_tokens, wired into emulator.dynamodb).

AWS: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html#DDB-TransactWriteItems-request-ClientRequestToken
In-process moto, each test with tokens of its own.
"""

from __future__ import annotations

import uuid

import aws_fixtures
import pytest
from aws_fixtures import create_audit_table, in_process_aws

from thingpress_cli.local.emulator.transaction_tokens import TOKENS, WINDOW_SECONDS, TransactionTokens

TABLE = "tokens-audit"
KEY = {"pk": {"S": "M#m"}, "sk": {"S": "#SHARD#00"}}


def add(n: int) -> list[dict]:
    return [{"Update": {"TableName": TABLE, "Key": KEY, "UpdateExpression": "ADD imported :n",
                        "ExpressionAttributeValues": {":n": {"N": str(n)}}}}]


@pytest.fixture
def ddb():
    with in_process_aws():
        client = aws_fixtures.client("dynamodb")
        create_audit_table(client, TABLE)
        yield client


def counted(ddb) -> int:
    return int(ddb.get_item(TableName=TABLE, Key=KEY, ConsistentRead=True)["Item"]["imported"]["N"])


def test_a_transaction_sent_again_with_its_token_is_applied_once(ddb):
    """What botocore sends after a lost answer: the same call, the same token. moto alone counts 2."""
    token = uuid.uuid4().hex
    ddb.transact_write_items(TransactItems=add(1), ClientRequestToken=token)
    ddb.transact_write_items(TransactItems=add(1), ClientRequestToken=token)
    assert counted(ddb) == 1
    ddb.transact_write_items(TransactItems=add(1), ClientRequestToken=uuid.uuid4().hex)  # a new call
    assert counted(ddb) == 2


def test_the_same_token_with_other_items_is_refused(ddb):
    token = uuid.uuid4().hex
    ddb.transact_write_items(TransactItems=add(1), ClientRequestToken=token)
    with pytest.raises(ddb.exceptions.IdempotentParameterMismatchException):
        ddb.transact_write_items(TransactItems=add(5), ClientRequestToken=token)
    assert counted(ddb) == 1


def test_a_cancelled_transaction_is_not_remembered(ddb):
    """It changed nothing: the same call again is a new attempt (its condition may hold by then)."""
    token = uuid.uuid4().hex
    guarded = [{"Put": {"TableName": TABLE, "Item": {**KEY, "imported": {"N": "7"}},
                        "ConditionExpression": "attribute_exists(pk)"}}]
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=guarded, ClientRequestToken=token)
    ddb.put_item(TableName=TABLE, Item={**KEY, "imported": {"N": "0"}})
    ddb.transact_write_items(TransactItems=guarded, ClientRequestToken=token)
    assert counted(ddb) == 7


def test_a_token_is_forgotten_after_the_window():
    now = [0.0]
    tokens = TransactionTokens(clock=lambda: now[0])

    class Handler:
        response_headers: dict = {}

        def __init__(self, items):
            self.params = {"TransactItems": items, "ClientRequestToken": "t"}

        def _get_action(self):
            return "TransactWriteItems"

    applied = []

    def call(handler):
        applied.append(handler.params["TransactItems"])
        return 200, {}, "{}"

    tokens.around(Handler(add(1)), call)
    tokens.around(Handler(add(1)), call)
    assert len(applied) == 1 and tokens.counts["repeats"] == 1
    now[0] = WINDOW_SECONDS + 1
    tokens.around(Handler(add(1)), call)
    assert len(applied) == 2


def test_the_process_tokens_are_the_emulators():
    assert isinstance(TOKENS, TransactionTokens)
