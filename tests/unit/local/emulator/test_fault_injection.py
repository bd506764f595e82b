"""Emulator fault injection (thingpress_cli.local.emulator.faults): each fault does what AWS's would."""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from thingpress_cli.local.emulator import process as emulator

ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def faults(emulator_url: str):
    """Set the emulator's faults for one test; always off afterwards."""
    yield lambda settings: emulator.set_faults(emulator_url, settings)
    emulator.set_faults(emulator_url, {})


def code_and_status(error: ClientError) -> tuple[str, int]:
    return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_write_is_applied_then_answered_500(aws, faults, emulator_url):
    sqs, ddb = aws("sqs", config=ONE_ATTEMPT), aws("dynamodb", config=ONE_ATTEMPT)
    url = sqs.create_queue(QueueName="fault-after-write")["QueueUrl"]
    ddb.create_table(TableName="fault-after-write", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    before = emulator.fault_report(emulator_url)["counts"]["error_after_write"]
    faults({"error_after_write": 1.0})

    with pytest.raises(ClientError) as sent:
        sqs.send_message(QueueUrl=url, MessageBody="applied anyway")
    with pytest.raises(ClientError) as put:
        ddb.put_item(TableName="fault-after-write", Item={"pk": {"S": "applied anyway"}})
    assert code_and_status(sent.value) == ("InternalError", 500)
    assert code_and_status(put.value) == ("InternalServerError", 500)
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "applied anyway"  # a read: no fault

    faults({})
    assert ddb.get_item(TableName="fault-after-write", Key={"pk": {"S": "applied anyway"}})["Item"]
    assert emulator.fault_report(emulator_url)["counts"]["error_after_write"] == before + 2


def test_a_batch_fails_in_part_and_only_its_successful_entries_are_sent(aws, faults):
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="fault-partial", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    faults({"partial_batch": 1.0, "seed": 7})

    answer = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)])
    faults({})

    failed = {f["Id"] for f in answer["Failed"]}
    sent = {s["Id"] for s in answer["Successful"]}
    assert failed and not failed & sent and failed | sent == {str(i) for i in range(10)}
    assert all(f["Code"] == "InternalError" and f["SenderFault"] is False for f in answer["Failed"])
    received = set()
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        received |= {m["Body"] for m in got}
    assert received == {f"m{i}" for i in sent}


def test_a_throttling_burst_answers_iot_and_dynamodb_throttling_exception(aws, faults, emulator_url):
    iot, ddb, sqs = aws("iot", config=ONE_ATTEMPT), aws("dynamodb", config=ONE_ATTEMPT), aws("sqs", config=ONE_ATTEMPT)
    faults({"throttle": {"every": 3600, "length": 3600, "share": 1.0}})  # one burst for the whole test

    with pytest.raises(ClientError) as listed:
        iot.list_things()
    with pytest.raises(ClientError) as tables:
        ddb.list_tables()
    assert code_and_status(listed.value) == ("ThrottlingException", 400)
    assert code_and_status(tables.value) == ("ThrottlingException", 400)
    sqs.list_queues()  # not a throttled service
    assert emulator.fault_report(emulator_url)["settings"]["throttle"]["share"] == 1.0


def test_fault_settings_are_validated(faults):
    with pytest.raises(ValueError, match="unknown fault settings: lightning"):
        faults({"lightning": 1})
    with pytest.raises(ValueError, match="probability"):
        faults({"error_after_write": 2})
