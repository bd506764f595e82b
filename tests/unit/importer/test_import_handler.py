"""The importer Lambda handler: partial batch responses, metrics, logs, lazy clients."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import import_handler
import pytest
from aws_fixtures import FakeContext
from events import sqs_event
from botocore.exceptions import ClientError
from importer_helpers import (
    FUNCTION_ARN, POLICY, QUEUED_AT, THING_GROUP, THING_TYPE, Aws, CallRecorder, FlakyIot, MessageFactory,
)

from thingpress import settings as env
from thingpress.audit.keys import UNREADABLE_MANIFEST
from thingpress.audit.states import COMPLETE, FAILED, IMPORTED, REJECTED

REPO = Path(__file__).resolve().parents[3]


class FailingThing:
    """IoT wrapper: CreateThing for one thing name always answers 503."""

    def __init__(self, client: Any, thing_name: str):
        self._client = client
        self._thing = thing_name

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if name != "create_thing":
            return target

        def create_thing(**kwargs: Any) -> Any:
            if kwargs["thingName"] == self._thing:
                raise ClientError({"Error": {"Code": "ServiceUnavailableException", "Message": "try later"},
                                   "ResponseMetadata": {"HTTPStatusCode": 503}}, "CreateThing")
            return target(**kwargs)
        return create_thing


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The handler's JSON log lines (the Logger's stream was bound when the module was imported)."""
    handler = import_handler.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


@pytest.fixture
def handler_env(aws: Aws, monkeypatch: pytest.MonkeyPatch, log_stream: io.StringIO) -> Iterator[Aws]:
    for name, value in {env.AUDIT_TABLE: aws.audit.table, env.THING_TYPE: THING_TYPE,
                        env.THING_GROUP: THING_GROUP, env.POLICY_NAMES: POLICY, env.MAX_RECEIVE_COUNT: "3",
                        env.VENDOR: "generated"}.items():
        monkeypatch.setenv(name, value)
    import_handler.set_importer(None)
    yield aws
    import_handler.set_importer(None)


def context(remaining_ms: int = 900_000) -> FakeContext:
    return FakeContext(remaining_ms=[remaining_ms], function_name="thingpress-importer",
                       invoked_function_arn=FUNCTION_ARN)


def invoke(event: dict[str, Any], capsys: pytest.CaptureFixture[str],
           ctx: FakeContext | None = None) -> tuple[dict[str, Any], dict[str, list[float]], list[dict[str, Any]]]:
    """Run the handler; return its response, the EMF metric values and the log lines."""
    capsys.readouterr()
    stream = import_handler.logger.registered_handler.stream  # type: ignore[attr-defined]
    stream.seek(0)
    stream.truncate()
    response = import_handler.lambda_handler(event, ctx or context())
    metrics: dict[str, list[float]] = {}
    logs = []
    for line in capsys.readouterr().out.splitlines() + stream.getvalue().splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if "_aws" in blob:
            for definition in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = blob[definition["Name"]]
                metrics[definition["Name"]] = value if isinstance(value, list) else [value]
        else:
            logs.append(blob)
    return response, metrics, logs


def with_receive_count(event: dict[str, Any], count: int) -> dict[str, Any]:
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = str(count)
    return event


def test_new_certificate_through_the_handler(handler_env: Aws, message: MessageFactory,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    aws = handler_env
    mid = aws.start_manifest(1)
    msg = message(mid, 1)

    response, metrics, logs = invoke(sqs_event(msg.encode()), capsys)

    assert response == {"batchItemFailures": []}
    assert metrics["Imported"] == [1]
    assert "Throttled" not in metrics and "Failed" not in metrics
    assert len(metrics["ImportLatency"]) == 1
    cert = aws.certificate(msg.fingerprint)
    assert cert["status"] == "ACTIVE"
    thing = aws.thing("Device-1")
    assert (thing["thingTypeName"], thing["attributes"]["thingpress_queued"]) == (THING_TYPE, QUEUED_AT)
    assert aws.principals("Device-1") == [cert["certificateArn"]]
    assert aws.policies(cert["certificateArn"]) == [POLICY]
    assert aws.group_things() == ["Device-1"]
    outcome_logs = [line for line in logs if line.get("status") == IMPORTED]
    assert len(outcome_logs) == 1
    assert (outcome_logs[0]["manifest_id"], outcome_logs[0]["fingerprint"], outcome_logs[0]["iot_calls"]) == (
        mid, msg.fingerprint, 5)


def test_duplicate_delivery_counts_once(handler_env: Aws, message: MessageFactory,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    aws = handler_env
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    invoke(sqs_event(msg.encode()), capsys)
    summary = aws.audit.get_summary(mid)

    response, metrics, _ = invoke(with_receive_count(sqs_event(msg.encode()), 2), capsys)

    assert response == {"batchItemFailures": []}
    assert "Imported" not in metrics
    assert aws.audit.get_summary(mid) == summary
    assert summary is not None and (summary["imported"], summary["state"]) == (1, COMPLETE)
    assert [r["status"] for r in aws.audit.entries(mid)] == [IMPORTED]


def test_batch_mixing_good_and_bad_returns_only_the_transient_failure(
        handler_env: Aws, message: MessageFactory, capsys: pytest.CaptureFixture[str]) -> None:
    aws = handler_env
    mid = aws.start_manifest(4)
    good, flaky = message(mid, 1), message(mid, 3)
    poison = json.dumps({**json.loads(message(mid, 2).encode()), "thing_name": "bad name"})
    import_handler.set_importer(aws.importer(iot=FailingThing(aws.iot, "Device-3")))

    event = sqs_event(good.encode(), poison, "not json", flaky.encode(), message(mid, 4).encode())
    response, metrics, _ = invoke(event, capsys)

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-3"}]}
    assert metrics["Imported"] == [1, 1]
    assert metrics["Rejected"] == [1, 1]
    assert metrics["Retried"] == [1]
    statuses = {r["position"]: (r["status"], r.get("reason")) for r in aws.audit.entries(mid)}
    assert statuses == {1: (IMPORTED, None), 4: (IMPORTED, None), 2: (REJECTED, (
        "invalid thing name 'bad name': AWS IoT needs 1-128 characters of letters, digits, ':', '_' or '-'"))}
    assert [r["sk"] for r in aws.audit.entries(UNREADABLE_MANIFEST)] == ["X#m-2"]
    summary = aws.audit.get_summary(mid)
    assert summary is not None and (summary["outstanding"], summary["state"]) == (1, "QUEUED")
    assert sorted(aws.group_things()) == ["Device-1", "Device-4"]


def test_final_attempt_records_failed_then_fails_the_record(
        handler_env: Aws, message: MessageFactory, capsys: pytest.CaptureFixture[str]) -> None:
    aws = handler_env
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    import_handler.set_importer(aws.importer(iot=FailingThing(aws.iot, "Device-1")))

    response, metrics, logs = invoke(with_receive_count(sqs_event(msg.encode()), 3), capsys)

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert metrics["Failed"] == [1]
    row = aws.audit.get_outcome(mid, msg.fingerprint)
    assert row is not None and (row["status"], row["reason"]) == (
        FAILED, "after 3 deliveries: ServiceUnavailableException: try later")
    summary = aws.audit.get_summary(mid)
    assert summary is not None and (summary["failed"], summary["state"]) == (1, COMPLETE)
    assert any(line.get("final") is True and line["level"] == "ERROR" for line in logs)


def test_throttling_burst_through_the_handler(handler_env: Aws, message: MessageFactory,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    aws = handler_env
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    import_handler.set_importer(aws.importer(iot=FlakyIot(aws.iot, "AttachPolicy", times=2)))

    response, metrics, _ = invoke(sqs_event(msg.encode()), capsys)

    assert response == {"batchItemFailures": []}
    assert (metrics["Imported"], metrics["Throttled"]) == ([1], [2])
    assert aws.policies(aws.certificate(msg.fingerprint)["certificateArn"]) == [POLICY]


def test_messages_too_close_to_the_deadline_are_returned_not_lost(
        handler_env: Aws, message: MessageFactory, capsys: pytest.CaptureFixture[str]) -> None:
    aws = handler_env
    mid = aws.start_manifest(2)
    event = sqs_event(message(mid, 1).encode(), message(mid, 2).encode())

    response, metrics, _ = invoke(event, capsys, context(remaining_ms=3_000))

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}, {"itemIdentifier": "m-1"}]}
    assert aws.audit.entries(mid) == []
    assert metrics["Retried"] == [1, 1]
    assert "Imported" not in metrics


def test_a_full_batch_runs_concurrently_and_counts_exactly(
        handler_env: Aws, message: MessageFactory, capsys: pytest.CaptureFixture[str]) -> None:
    aws = handler_env
    mid = aws.start_manifest(10)
    messages = [message(mid, i) for i in range(1, 11)]
    dynamodb = CallRecorder(import_handler.get_importer(context()).audit.client, "dynamodb")

    response, metrics, logs = invoke(sqs_event(*(m.encode() for m in messages)), capsys)

    assert response == {"batchItemFailures": []}, [line for line in logs if line.get("level") != "INFO"]
    # Ten outcome rows, one count of them (a one-item transaction); then one completion check for the
    # manifest (its summary and shards read in one Query, then the update that completes it).
    assert dynamodb.calls == ["PutItem"] * 10 + ["TransactWriteItems", "Query", "UpdateItem"]
    assert metrics["Imported"] == [1] * 10
    summary = aws.audit.get_summary(mid)
    assert summary is not None
    assert (summary["imported"], summary["outstanding"], summary["state"]) == (10, 0, COMPLETE)
    assert sorted(aws.group_things()) == sorted(f"Device-{i}" for i in range(1, 11))


def test_importing_the_handler_needs_no_settings_and_makes_no_aws_call() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("THINGPRESS_", "AWS_"))}
    clean.update({"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "us-east-1"})
    out = subprocess.run([sys.executable, "-c", "import import_handler; print(import_handler._importer)"],
                         cwd=REPO / "lambdas" / "importer", env=clean, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"


def lambda_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """What the SQS event source mapping hands the function for received messages."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {"ApproximateReceiveCount": m["Attributes"]["ApproximateReceiveCount"], "SentTimestamp": "0",
                       "SenderId": "provider", "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn, "awsRegion": "us-east-1"} for m in messages]}


def test_sqs_redelivers_until_the_dlq_and_the_audit_row_says_failed(
        handler_env: Aws, message: MessageFactory, capsys: pytest.CaptureFixture[str]) -> None:
    aws = handler_env
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="import-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName="import", Attributes={
        "VisibilityTimeout": "0",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mid = aws.start_manifest(2)
    good, doomed = message(mid, 1), message(mid, 2)
    for m in (good, doomed):
        sqs.send_message(QueueUrl=queue, MessageBody=m.encode())
    import_handler.set_importer(aws.importer(iot=FailingThing(aws.iot, "Device-2")))

    receives = 0
    while receives < 10:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"])
        messages = got.get("Messages", [])
        if not messages:
            break
        receives += 1
        response, _, _ = invoke(lambda_event(messages, queue_arn), capsys)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for m in messages:  # the event source mapping deletes what did not fail
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    assert receives == 3
    in_dlq = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["thing_name"] for m in in_dlq] == ["Device-2"]
    rows = {r["thing_name"]: r for r in aws.audit.entries(mid)}
    assert rows["Device-1"]["status"] == IMPORTED
    assert (rows["Device-2"]["status"], rows["Device-2"]["attempts"], rows["Device-2"]["reason"]) == (
        FAILED, 3, "after 3 deliveries: ServiceUnavailableException: try later")
    summary = aws.audit.get_summary(mid)
    assert summary is not None
    assert (summary["imported"], summary["failed"], summary["state"]) == (1, 1, COMPLETE)


def test_a_failed_batch_write_sends_every_queued_record_back(
        handler_env: Aws, message: MessageFactory, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    aws = handler_env
    mid = aws.start_manifest(3)
    importer = import_handler.get_importer(context())

    def unavailable(outcomes: Any, now: Any = None) -> list[bool]:
        raise RuntimeError("DynamoDB unavailable")

    monkeypatch.setattr(importer.audit, "record_outcomes", unavailable)
    response, metrics, _ = invoke(sqs_event(*(message(mid, i).encode() for i in range(1, 4))), capsys)

    assert response == {"batchItemFailures": [{"itemIdentifier": f"m-{i}"} for i in range(3)]}
    assert aws.audit.entries(mid) == [] and metrics["Retried"] == [3]
    monkeypatch.undo()
    # SQS delivers them again: now they are written, once.
    again = {"Records": [{**r, "attributes": {**r["attributes"], "ApproximateReceiveCount": "2"}}
                         for r in sqs_event(*(message(mid, i).encode() for i in range(1, 4)))["Records"]]}
    response, metrics, _ = invoke(again, capsys)
    assert response == {"batchItemFailures": []} and metrics["Imported"] == [1, 1, 1]
    summary = aws.audit.get_summary(mid)
    assert summary is not None and (summary["imported"], summary["state"]) == (3, COMPLETE)
