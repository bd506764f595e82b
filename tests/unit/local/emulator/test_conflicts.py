"""DynamoDB transaction conflicts in the local cloud (thingpress_cli.local.emulator.conflicts, wired into emulator.dynamodb).

AWS: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling
In-process moto on a :class:`ManualClock` (the ``transaction_holds`` fixture): no sleeps, no threads.
"""

from __future__ import annotations

import aws_fixtures
import pytest
from aws_fixtures import create_audit_table, in_process_aws
from botocore.exceptions import ClientError

from thingpress_cli.local.emulator import conflicts
from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.local.emulator.conflicts import HOLDS, TransactionHolds

TABLE = "conflicts-audit"
OTHER_TABLE = "conflicts-other"
ONGOING = "Transaction is ongoing for the item"


def key(pk: str, sk: str = "#SUMMARY") -> dict[str, dict[str, str]]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def put(item_key: dict, table: str = TABLE, **extra) -> dict:
    return {"Put": {"TableName": table, "Item": {**item_key, **extra}}}


def update(item_key: dict, value: str, table: str = TABLE) -> dict:
    return {"Update": {"TableName": table, "Key": item_key, "UpdateExpression": "SET v = :v",
                       "ExpressionAttributeValues": {":v": {"S": value}}}}


def item(ddb, item_key: dict, table: str = TABLE) -> dict | None:
    return ddb.get_item(TableName=table, Key=item_key, ConsistentRead=True).get("Item")


def code_status_message(error: ClientError) -> tuple[str, int, str]:
    return (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"],
            error.response["Error"]["Message"])


def reasons(error: ClientError) -> list[str]:
    return [reason["Code"] for reason in error.response["CancellationReasons"]]


@pytest.fixture
def ddb(transaction_holds):
    """A DynamoDB client on in-process moto with two audit-shaped tables (hash ``pk``, range ``sk``)."""
    with in_process_aws():
        client = aws_fixtures.client("dynamodb")
        create_audit_table(client, TABLE)
        create_audit_table(client, OTHER_TABLE)
        yield client


def test_a_transaction_holds_its_items_until_the_hold_ends(ddb, transaction_holds):
    transaction_holds.configure({"hold_ms": 25})
    ddb.transact_write_items(TransactItems=[put(key("a"), v={"S": "tx"}), put(key("b"))])
    transaction_holds.clock.advance(0.024)

    with pytest.raises(ClientError) as updated:
        ddb.update_item(**update(key("a"), "single")["Update"])
    with pytest.raises(ClientError) as replaced:
        ddb.put_item(TableName=TABLE, Item={**key("b"), "v": {"S": "single"}})
    with pytest.raises(ClientError) as deleted:
        ddb.delete_item(TableName=TABLE, Key=key("a"))
    for refused in (updated, replaced, deleted):
        assert code_status_message(refused.value) == ("TransactionConflictException", 400, ONGOING)
    assert item(ddb, key("a"))["v"] == {"S": "tx"} and "v" not in item(ddb, key("b"))  # reads pass; nothing applied
    assert transaction_holds.counts == {"single_writes": 3, "transactions": 0, "injected": 0}  # botocore: no retry

    transaction_holds.clock.advance(0.002)  # 26 ms after the transaction: the hold is over
    ddb.update_item(**update(key("a"), "single")["Update"])
    assert item(ddb, key("a"))["v"] == {"S": "single"}


def test_a_second_transaction_on_a_held_item_is_cancelled_and_applies_nothing(ddb, transaction_holds):
    transaction_holds.configure({"hold_ms": 25})
    ddb.transact_write_items(TransactItems=[put(key("a"), v={"S": "first"})])

    with pytest.raises(ddb.exceptions.TransactionCanceledException) as cancelled:
        ddb.transact_write_items(TransactItems=[put(key("c"), v={"S": "second"}), update(key("a"), "second")])

    assert reasons(cancelled.value) == ["None", "TransactionConflict"]
    assert cancelled.value.response["CancellationReasons"][1]["Message"] == ONGOING
    assert code_status_message(cancelled.value) == (
        "TransactionCanceledException", 400,
        "Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]")
    assert item(ddb, key("c")) is None and item(ddb, key("a"))["v"] == {"S": "first"}
    assert transaction_holds.counts == {"single_writes": 0, "transactions": 1, "injected": 0}


def test_items_not_held_are_unaffected(ddb, transaction_holds):
    """Held is one item: the same hash key with another range key, or the same key in another table, is free."""
    transaction_holds.configure({"hold_ms": 25})
    ddb.transact_write_items(TransactItems=[put(key("a"))])

    ddb.put_item(TableName=TABLE, Item={**key("a", "other-sort-key"), "v": {"S": "free"}})
    ddb.update_item(**update(key("a"), "free", OTHER_TABLE)["Update"])
    ddb.transact_write_items(TransactItems=[update(key("b"), "free"), update(key("a", "another"), "free")])
    assert item(ddb, key("b"))["v"] == {"S": "free"} and item(ddb, key("a"), OTHER_TABLE)["v"] == {"S": "free"}
    assert transaction_holds.counts == {"single_writes": 0, "transactions": 0, "injected": 0}
    with pytest.raises(ClientError, match="TransactionConflictException"):  # while the held item itself is refused
        ddb.put_item(TableName=TABLE, Item=key("a"))


def test_a_cancelled_transaction_holds_nothing(ddb, transaction_holds):
    transaction_holds.configure({"hold_ms": 25})
    ddb.put_item(TableName=TABLE, Item=key("taken"))
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as failed_condition:  # moto's own cancellation
        ddb.transact_write_items(TransactItems=[
            put(key("d")), {"Put": {"TableName": TABLE, "Item": key("taken"), "ConditionExpression": "attribute_not_exists(pk)"}}])
    assert reasons(failed_condition.value) == ["None", "ConditionalCheckFailed"]
    ddb.transact_write_items(TransactItems=[put(key("a"))])  # now a holds
    with pytest.raises(ddb.exceptions.TransactionCanceledException):  # cancelled by the conflict on a
        ddb.transact_write_items(TransactItems=[put(key("e")), update(key("a"), "x")])

    ddb.put_item(TableName=TABLE, Item={**key("d"), "v": {"S": "free"}})  # within the hold of both
    ddb.put_item(TableName=TABLE, Item={**key("e"), "v": {"S": "free"}})
    ddb.put_item(TableName=TABLE, Item={**key("taken"), "v": {"S": "free"}})
    assert [item(ddb, key(k))["v"] for k in ("d", "e", "taken")] == [{"S": "free"}] * 3


def test_a_retry_of_the_same_transaction_is_not_blocked_by_its_own_hold(ddb, transaction_holds):
    """The SDK resends a transaction with its ``ClientRequestToken`` (after a 500): AWS answers it as an
    idempotent repeat of a finished transaction, not as a conflict with itself."""
    transaction_holds.configure({"hold_ms": 25})
    ddb.transact_write_items(TransactItems=[put(key("a"))], ClientRequestToken="token-1")
    ddb.transact_write_items(TransactItems=[put(key("a"))], ClientRequestToken="token-1")
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[put(key("a"))], ClientRequestToken="token-2")


def test_inject_rate_one_always_conflicts_and_zero_never(ddb, transaction_holds):
    transaction_holds.configure({"inject": 1.0})
    with pytest.raises(ClientError) as single:
        ddb.put_item(TableName=TABLE, Item=key("never-held"))
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as transaction:
        ddb.transact_write_items(TransactItems=[put(key("x")), put(key("y"))])
    assert code_status_message(single.value)[:2] == ("TransactionConflictException", 400)
    assert reasons(transaction.value) == ["TransactionConflict", "TransactionConflict"]
    assert transaction_holds.counts == {"single_writes": 1, "transactions": 1, "injected": 2}
    assert item(ddb, key("never-held")) is None and item(ddb, key("x")) is None

    transaction_holds.configure({"inject": 0.0, "hold_ms": 25})
    for n in range(20):  # distinct items, never held: never a conflict
        ddb.put_item(TableName=TABLE, Item=key(f"p{n}"))
        ddb.transact_write_items(TransactItems=[put(key(f"t{n}"))])
    assert transaction_holds.counts["injected"] == 2


def test_injected_conflicts_replay_with_their_seed(ddb, transaction_holds):
    def outcomes() -> list[bool]:
        transaction_holds.configure({"inject": 0.5, "seed": 1})
        refused = []
        for n in range(16):
            try:
                ddb.put_item(TableName=TABLE, Item=key(f"r{n}"))
                refused.append(False)
            except ClientError as error:
                assert error.response["Error"]["Code"] == "TransactionConflictException"
                refused.append(True)
        return refused

    first = outcomes()
    assert outcomes() == first and True in first and False in first


@pytest.mark.parametrize("settings, refusal", [
    ({"hold": 25}, "unknown conflict settings: hold"),
    ({"hold_ms": -1}, "hold_ms is 0..60000"),
    ({"hold_ms": 60_001}, "hold_ms is 0..60000"),
    ({"hold_ms": "soon"}, "could not convert"),
    ({"inject": 1.5}, r"inject is a probability \(0..1\)"),
    ({"inject": float("nan")}, "inject is a probability"),
    ({"seed": "one"}, "seed is an integer"),
    ({"seed": True}, "seed is an integer"),
])
def test_configure_refuses_bad_settings_and_keeps_the_current_ones(transaction_holds, settings, refusal):
    transaction_holds.configure({"hold_ms": 25, "inject": 0.25, "seed": 3})
    with pytest.raises(ValueError, match=refusal):
        transaction_holds.configure(settings)
    assert transaction_holds.report()["settings"] == {"hold_ms": 25.0, "inject": 0.25, "seed": 3}


def test_reset_turns_holds_off_and_forgets_everything():
    holds = TransactionHolds(clock=lambda: 5.0)
    holds.configure({"hold_ms": 25, "inject": 1.0})
    holds.hold([("arn:table", "a", None)])
    assert holds.refusal("PutItem", [("arn:table", "a", None)]) is not None
    holds.reset()
    assert not holds.active
    assert holds.report() == {"settings": {"hold_ms": 0.0, "inject": 0.0, "seed": 0},
                              "counts": {"single_writes": 0, "transactions": 0, "injected": 0}, "held": 0}


def test_the_hold_setting_is_read_from_the_environment():
    assert conflicts.from_environment({conflicts.HOLD_SETTING: "30"}) == {"hold_ms": 30.0}
    assert conflicts.from_environment({conflicts.HOLD_SETTING: "0"}) == {"hold_ms": 0.0}
    assert conflicts.from_environment({conflicts.HOLD_SETTING: ""}) == {"hold_ms": conflicts.EMULATOR_HOLD_MS}
    assert conflicts.from_environment({}) == {"hold_ms": 25.0}  # AWS-like: about one transaction's time


def test_holds_set_in_a_test(ddb, transaction_holds):
    """With the next test: the ``transaction_holds`` fixture leaves nothing behind (they run in file order)."""
    transaction_holds.configure({"hold_ms": 25, "inject": 0.5})
    ddb.transact_write_items(TransactItems=[put(key("a"))])
    assert transaction_holds.report()["held"] == 1


def test_nothing_leaks_into_the_next_test():
    assert not HOLDS.active
    assert HOLDS.report() == {"settings": {"hold_ms": 0.0, "inject": 0.0, "seed": 0},
                              "counts": {"single_writes": 0, "transactions": 0, "injected": 0}, "held": 0}


@pytest.fixture
def emulator_conflicts(emulator_url):
    """Change the emulator's conflict settings for one test; always off afterwards."""
    yield lambda settings: emulator.set_conflicts(emulator_url, settings)
    emulator.set_conflicts(emulator_url, {})


def test_the_emulator_answers_conflicts_as_set_at_its_endpoint(aws, emulator_conflicts):
    """Over HTTP (moto server + waitress): the same answers, and the endpoint shows settings and counts."""
    ddb = aws("dynamodb")
    create_audit_table(ddb, "conflicts-emulator")
    before = emulator_conflicts({"hold_ms": 60_000})  # a minute: the next call is surely within it
    ddb.transact_write_items(TransactItems=[put(key("a"), table="conflicts-emulator")])

    with pytest.raises(ClientError) as refused:
        ddb.put_item(TableName="conflicts-emulator", Item=key("a"))
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as cancelled:
        ddb.transact_write_items(TransactItems=[put(key("b"), table="conflicts-emulator"),
                                                put(key("a"), table="conflicts-emulator")])
    assert code_status_message(refused.value) == ("TransactionConflictException", 400, ONGOING)
    assert reasons(cancelled.value) == ["None", "TransactionConflict"]

    report = emulator_conflicts({"hold_ms": 60_000})  # POST replaces the settings and answers the report
    assert report["settings"]["hold_ms"] == 60_000.0 and report["held"] == 0  # replacing clears the holds
    assert report["counts"]["single_writes"] == before["counts"]["single_writes"] + 1
    assert report["counts"]["transactions"] == before["counts"]["transactions"] + 1
    with pytest.raises(ValueError, match="unknown conflict settings: holdms"):
        emulator_conflicts({"holdms": 1})
