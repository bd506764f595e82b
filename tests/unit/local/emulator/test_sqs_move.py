"""The emulator's SQS message move tasks (``thingpress_cli.local.emulator.sqs_move``), rule by rule.

In process (moto's ``mock_aws`` with the three actions installed), plus one run
through the real emulator process to prove the dispatcher hook.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import boto3
import pytest
from aws_fixtures import FAKE_CREDENTIALS, REGION
from botocore.exceptions import ClientError
from moto import mock_aws

from thingpress_cli.local.emulator import sqs_move


def _arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


class Queues:
    def __init__(self, sqs, name: str = "work"):
        self.sqs = sqs
        self.dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        self.dlq_arn = _arn(sqs, self.dlq)
        self.source = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": self.dlq_arn, "maxReceiveCount": 1})})["QueueUrl"]
        self.source_arn = _arn(sqs, self.source)

    def fill_dlq(self, n: int) -> None:
        for i in range(n):
            self.sqs.send_message(QueueUrl=self.dlq, MessageBody=f"m{i}",
                                  MessageAttributes={"k": {"DataType": "String", "StringValue": f"v{i}"}})

    def count(self, url: str) -> int:
        return int(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                   ["Attributes"]["ApproximateNumberOfMessages"])


@pytest.fixture
def tasks(monkeypatch) -> Iterator[sqs_move.MoveTasks]:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    tasks = sqs_move.MoveTasks(sleep=lambda _s: None)
    with mock_aws():
        sqs_move.install(tasks)
        yield tasks
        tasks.reset()
    sqs_move.install()


@pytest.fixture
def sqs(tasks):
    return boto3.client("sqs", region_name=REGION)


def _code(exc: pytest.ExceptionInfo) -> str:
    """The error code as botocore reports it (SQS's JSON protocol maps the query-compatible code)."""
    return exc.value.response["Error"]["Code"].removeprefix("AWS.SimpleQueueService.")


def test_redrive_to_the_original_source_keeps_body_and_attributes(sqs, tasks):
    q = Queues(sqs)
    q.fill_dlq(3)
    handle = sqs.start_message_move_task(SourceArn=q.dlq_arn)["TaskHandle"]
    tasks.join(handle, 5)
    [entry] = sqs.list_message_move_tasks(SourceArn=q.dlq_arn)["Results"]
    assert {k: entry[k] for k in ("TaskHandle", "Status", "SourceArn", "ApproximateNumberOfMessagesMoved",
                                  "ApproximateNumberOfMessagesToMove")} == {
        "TaskHandle": handle, "Status": "COMPLETED", "SourceArn": q.dlq_arn,
        "ApproximateNumberOfMessagesMoved": 3, "ApproximateNumberOfMessagesToMove": 3}
    # given at start or not at all
    assert "DestinationArn" not in entry and "MaxNumberOfMessagesPerSecond" not in entry
    assert "FailureReason" not in entry and entry["StartedTimestamp"] > 0
    got = sqs.receive_message(QueueUrl=q.source, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                              AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert sorted((m["Body"], m["MessageAttributes"]["k"]["StringValue"]) for m in got) == [
        ("m0", "v0"), ("m1", "v1"), ("m2", "v2")]
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in got} == {"1"}
    assert q.count(q.dlq) == 0


def test_explicit_destination_and_rate_are_listed(sqs, tasks):
    q = Queues(sqs)
    other = sqs.create_queue(QueueName="elsewhere")["QueueUrl"]
    q.fill_dlq(2)
    handle = sqs.start_message_move_task(SourceArn=q.dlq_arn, DestinationArn=_arn(sqs, other),
                                         MaxNumberOfMessagesPerSecond=7)["TaskHandle"]
    tasks.join(handle, 5)
    [entry] = sqs.list_message_move_tasks(SourceArn=q.dlq_arn)["Results"]
    assert (entry["DestinationArn"], entry["MaxNumberOfMessagesPerSecond"]) == (_arn(sqs, other), 7)
    assert (q.count(other), q.count(q.source)) == (2, 0)


def test_refusals(sqs, tasks):
    q = Queues(sqs)
    with pytest.raises(ClientError) as exc:
        sqs.start_message_move_task(SourceArn=q.source_arn)  # not anyone's DLQ
    assert _code(exc) == "UnsupportedOperation"
    assert "Dead Letter Queue" in exc.value.response["Error"]["Message"]
    assert isinstance(exc.value, sqs.exceptions.UnsupportedOperation)  # the SDK's modelled error
    missing = q.dlq_arn.replace("work-dlq", "nope")
    with pytest.raises(ClientError) as exc:
        sqs.start_message_move_task(SourceArn=missing)
    assert _code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        sqs.start_message_move_task(SourceArn=q.dlq_arn, DestinationArn=missing)
    assert _code(exc) == "ResourceNotFoundException"
    for rate in (0, 501):
        with pytest.raises(ClientError) as exc:
            sqs.start_message_move_task(SourceArn=q.dlq_arn, MaxNumberOfMessagesPerSecond=rate)
        assert _code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        sqs.list_message_move_tasks(SourceArn=q.dlq_arn, MaxResults=11)
    assert _code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        sqs.cancel_message_move_task(TaskHandle="bm9wZQ==")
    assert _code(exc) == "ResourceNotFoundException"


def test_one_active_task_per_queue_and_cancel_only_while_running(sqs, tasks):
    q = Queues(sqs)
    q.fill_dlq(5)
    first_moved = threading.Event()
    release = threading.Event()

    def hold(task):
        if task.moved == 2:  # pause the mover after exactly two messages
            first_moved.set()
            release.wait(5)

    tasks.before_move = hold
    handle = sqs.start_message_move_task(SourceArn=q.dlq_arn)["TaskHandle"]
    assert first_moved.wait(5)
    with pytest.raises(ClientError) as exc:
        sqs.start_message_move_task(SourceArn=q.dlq_arn)
    assert _code(exc) == "UnsupportedOperation"
    assert sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"] == 2
    assert sqs.list_message_move_tasks(SourceArn=q.dlq_arn)["Results"][0]["Status"] == "CANCELLING"
    release.set()
    tasks.join(handle, 5)
    assert sqs.list_message_move_tasks(SourceArn=q.dlq_arn)["Results"][0]["Status"] == "CANCELLED"
    assert (q.count(q.source), q.count(q.dlq)) == (2, 3)  # moved stay moved, the rest stay put
    with pytest.raises(ClientError) as exc:
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert _code(exc) == "UnsupportedOperation"
    # a new task may start now; the list is newest first, one by default, up to MaxResults
    tasks.before_move = lambda task: None
    second = sqs.start_message_move_task(SourceArn=q.dlq_arn)["TaskHandle"]
    tasks.join(second, 5)
    assert [e["TaskHandle"] for e in sqs.list_message_move_tasks(SourceArn=q.dlq_arn)["Results"]] == [second]
    both = sqs.list_message_move_tasks(SourceArn=q.dlq_arn, MaxResults=10)["Results"]
    assert [e["Status"] for e in both] == ["COMPLETED", "CANCELLED"]
    assert q.count(q.source) == 5


def test_through_the_emulator_process(aws):
    sqs = aws("sqs")
    q = Queues(sqs, name=f"emu{int(time.time() * 1000)}")
    q.fill_dlq(4)
    sqs.start_message_move_task(SourceArn=q.dlq_arn, MaxNumberOfMessagesPerSecond=100)
    deadline = time.monotonic() + 10
    while sqs.list_message_move_tasks(SourceArn=q.dlq_arn)["Results"][0]["Status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (q.count(q.source), q.count(q.dlq)) == (4, 0)
