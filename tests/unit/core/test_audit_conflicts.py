"""The audit table under DynamoDB transaction conflicts (issue 21), as AWS answers them.

AWS refuses a write to an item an ongoing transaction holds (``TransactionConflictException``) and
cancels a transaction meeting another with reason ``TransactionConflict``; botocore retries neither
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling).
In-process moto holds a transaction's items for ``hold_ms`` on a manual clock (the ``transaction_holds``
fixture, ``thingpress_cli.local.emulator.conflicts``); the table's ``sleep`` advances that clock, so a backoff
is waited for exactly and nothing races. Each test here fails without the retry (``CONFLICT_ATTEMPTS = 1``).
"""

from __future__ import annotations

import random

import aws_fixtures
import pytest
from aws_fixtures import create_audit_table, in_process_aws
from botocore.exceptions import ClientError

from thingpress.audit.chain import Handle
from thingpress.audit.keys import SUMMARY_SK, claims_pk, manifest_pk, shard_sk, to_item
from thingpress.audit.outcomes import OutcomeRecord
from thingpress.audit.states import FAILED, IMPORTED, QUEUED, REJECTED
from thingpress.audit.summaries import Progress
from thingpress.audit.table import AuditTable
from thingpress.audit.writes import CONFLICT_ATTEMPTS, CONFLICT_BACKOFF_SECONDS, is_conflict

TABLE = "audit-conflicts"
MID = "generated-" + "c" * 20


class SameShard(random.Random):
    """Always the same shard and the longest backoff: two transactions meet on purpose."""

    def randrange(self, *args, **kwargs):  # noqa: ARG002
        return 0

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def table(transaction_holds):
    with in_process_aws():
        client = aws_fixtures.client("dynamodb")
        create_audit_table(client, TABLE)
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            transaction_holds.clock.advance(seconds)

        t = AuditTable(client, TABLE, sleep=sleep, rng=SameShard())
        t.slept = slept  # type: ignore[attr-defined]
        t.start_manifest(MID, vendor="generated", bucket="b", key="k", version="v", etag=None, size=1)
        assert t.checkpoint(MID, 3, Progress(entries=3, queued=3), previous=0, parse_done=True,
                            state=QUEUED)
        transaction_holds.configure({"hold_ms": 25})
        yield t


def outcome(n: int, status: str = IMPORTED) -> OutcomeRecord:
    return OutcomeRecord(MID, f"{n:064x}", status, vendor="generated", position=n, thing_name=f"t-{n}")


def hold(table: AuditTable, sk: str) -> None:
    """A transaction of someone else's that holds item ``sk`` of the manifest (for ``hold_ms``)."""
    table.client.transact_write_items(TransactItems=[{"Update": {
        "TableName": TABLE, "Key": to_item({"pk": manifest_pk(MID), "sk": sk}),
        "UpdateExpression": "SET touched = :t", "ExpressionAttributeValues": to_item({":t": True})}}])


def test_outcome_transactions_meeting_on_a_shard_retry_and_count_once(table, transaction_holds):
    assert table.record_outcomes([outcome(1)]) == [True]  # holds shard 0 for 25 ms

    assert table.record_outcomes([outcome(2), outcome(3, REJECTED)]) == [True, True]

    assert table.conflicts == 1 and table.slept == [CONFLICT_BACKOFF_SECONDS]
    assert transaction_holds.report()["counts"]["transactions"] == 1
    summary = table.get_summary(MID)
    assert (summary["imported"], summary["rejected"], summary["outstanding"]) == (2, 1, 0)
    assert table.try_complete(MID)
    assert [r["status"] for r in table.entries(MID)] == [IMPORTED, IMPORTED, REJECTED]


def test_the_final_failed_outcome_is_recorded_through_a_conflict(table):
    """The delivery that sends a message to the DLQ records FAILED first: a conflict must not lose it."""
    hold(table, shard_sk(0))

    assert table.record_outcome(MID, outcome(1).fingerprint, FAILED, vendor="generated", position=1,
                                thing_name="t-1", reason="after 5 deliveries: throttled", complete=False)

    assert table.conflicts == 1
    assert table.get_outcome(MID, outcome(1).fingerprint)["status"] == FAILED


def test_a_checkpoint_meeting_a_held_summary_retries(table):
    mid = "generated-" + "d" * 20
    table.start_manifest(mid, vendor="generated", bucket="b", key="k2", version="v", etag=None, size=1)
    table.client.transact_write_items(TransactItems=[{"ConditionCheck": {
        "TableName": TABLE, "Key": to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
        "ConditionExpression": "attribute_exists(pk)"}}])

    assert table.checkpoint(mid, 2, Progress(entries=2, queued=2), previous=0, handle=Handle())

    assert table.conflicts == 1
    assert table.get_summary(mid)["checkpoint"] == 2


def test_claims_meeting_a_held_claim_retry_after_a_backoff(table):
    fingerprint = outcome(1).fingerprint
    table.client.transact_write_items(TransactItems=[{"ConditionCheck": {
        "TableName": TABLE, "Key": to_item({"pk": claims_pk(MID), "sk": fingerprint}),
        "ConditionExpression": "attribute_not_exists(pk)"}}])

    assert table.claim_certificates(MID, [(fingerprint, 1), (outcome(2).fingerprint, 2)]) == {}

    assert table.conflicts == 1 and len(table.slept) == 1 and table.slept[0] > 0
    assert table.claim_certificates(MID, [(fingerprint, 5)]) == {5: 1}  # the claim did settle


def test_a_conflict_that_outlasts_every_attempt_is_raised(table, transaction_holds):
    transaction_holds.configure({"hold_ms": 60_000})
    hold(table, SUMMARY_SK)

    with pytest.raises(ClientError) as raised:
        table.note_paused(MID, checkpoint=3, seconds=60)

    assert raised.value.response["Error"]["Code"] == "TransactionConflictException"
    assert table.conflicts == CONFLICT_ATTEMPTS - 1


def test_a_condition_failure_is_never_retried(table):
    hold(table, shard_sk(0))

    assert not table.checkpoint(MID, 3, Progress(entries=1), previous=0)  # parsed already: refused at once

    assert table.conflicts == 0 and table.slept == []


def test_is_conflict_tells_a_conflict_from_a_condition_failure():
    def cancelled(*codes: str) -> ClientError:
        return ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                            "CancellationReasons": [{"Code": c} for c in codes]}, "TransactWriteItems")

    assert is_conflict(ClientError({"Error": {"Code": "TransactionConflictException"}}, "UpdateItem"))
    assert is_conflict(cancelled("None", "TransactionConflict"))
    assert not is_conflict(cancelled("ConditionalCheckFailed", "TransactionConflict"))
    assert not is_conflict(cancelled("None", "ThrottlingError"))
    assert not is_conflict(ClientError({"Error": {"Code": "ThrottlingException"}}, "UpdateItem"))
