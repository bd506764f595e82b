"""Reusable moto helpers: in-process AWS, the audit table, queues, buckets, S3 events and a Lambda context.

Tests import it as ``aws_fixtures`` (``tests/`` is on ``sys.path`` because
``tests/conftest.py`` is a rootless conftest, pytest's default import mode). Every helper takes an already-created boto3 client so the caller decides where
moto runs (in-process :func:`in_process_aws` or the emulator's moto server).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from moto import mock_aws
from moto.core.models import MockAWS

from thingpress import audit
from thingpress_cli.local.moto_ext import apply_behaviour_patches, apply_speed_patches

REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing", "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION,
}


def in_process_aws() -> MockAWS:
    """moto in-process for one test, answering as the emulator does.

    The emulator's behaviour patches (:func:`thingpress_cli.local.moto_ext.apply_behaviour_patches`)
    apply, so in-process AWS follows the same AWS rules as the local cloud, and its
    speed patches (same answers, no whole-table copies or per-request scans: the
    model-based test runs about 15% faster with them). Each
    test starts from empty backends (``mock_aws`` resets them on start), but the
    boto3 session is kept: moto would otherwise drop it on every start, and each
    test would re-read every service model it creates a client for (~0.2 s each).
    """
    apply_behaviour_patches()
    apply_speed_patches()
    return mock_aws(config={"core": {"reset_boto3_session": False}})


def create_audit_table(client: Any, name: str = "thingpress-audit") -> str:
    """The audit table with the key schema and indexes documented in ``thingpress.audit``."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "thing_name", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "state", "AttributeType": "S"},
            {"AttributeName": "updated_at", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {"IndexName": audit.INDEX_BY_THING,
             "KeySchema": [{"AttributeName": "thing_name", "KeyType": "HASH"},
                           {"AttributeName": "updated_at", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "ALL"}},
            {"IndexName": audit.INDEX_BY_STATUS,
             "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                           {"AttributeName": "updated_at", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "ALL"}},
            {"IndexName": audit.INDEX_BY_STATE,
             "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"},
                           {"AttributeName": "updated_at", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "ALL"}},
        ],
    )
    return name


def create_queue(client: Any, name: str, **attributes: str) -> str:
    """A standard queue; returns its URL."""
    return client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def create_bucket(client: Any, name: str, *, versioned: bool = True) -> str:
    client.create_bucket(Bucket=name)
    if versioned:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def drain_queue(client: Any, url: str) -> list[dict[str, Any]]:
    """Receive and delete every message (moto delivers immediately)."""
    out: list[dict[str, Any]] = []
    while True:
        got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return out
        out.extend(messages)
        client.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])


def s3_event(bucket: str, key: str, *, version_id: str | None = None, etag: str | None = None,
             size: int = 0, event_name: str = "ObjectCreated:Put") -> dict[str, Any]:
    """An S3 event notification as S3 writes it into SQS (key URL-encoded)."""
    obj: dict[str, Any] = {"key": quote_plus(key), "size": size}
    if etag:
        obj["eTag"] = etag
    if version_id:
        obj["versionId"] = version_id
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": "2026-11-21T01:02:03.000Z", "eventName": event_name,
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "manifest",
               "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}, "object": obj},
    }]}


S3_TEST_EVENT = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-21T01:02:03.000Z",
                 "Bucket": "manifests", "RequestId": "X", "HostId": "Y"}


def put_and_event(s3: Any, bucket: str, key: str, body: bytes) -> dict[str, Any]:
    """Upload ``body`` and return the S3 event notification for that exact version."""
    out = s3.put_object(Bucket=bucket, Key=key, Body=body)
    return s3_event(bucket, key, version_id=out.get("VersionId"), etag=out["ETag"].strip('"'), size=len(body))


def sqs_event(*bodies: Any, queue_arn: str = f"arn:aws:sqs:{REGION}:123456789012:manifests") -> dict[str, Any]:
    """A Lambda SQS event carrying ``bodies`` (dicts are JSON-encoded)."""
    records = []
    for i, body in enumerate(bodies):
        records.append({
            "messageId": f"m-{i}", "receiptHandle": f"rh-{i}",
            "body": body if isinstance(body, str) else json.dumps(body),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0",
                           "SenderId": "s3", "ApproximateFirstReceiveTimestamp": "0"},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn, "awsRegion": REGION,
        })
    return {"Records": records}


@dataclass
class FakeContext:
    """A Lambda context. ``remaining_ms`` is a list consumed per call (last value repeats)."""

    remaining_ms: list[int] = field(default_factory=lambda: [900_000])
    function_name: str = "thingpress-provider"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:thingpress-provider"
    aws_request_id: str = "req-1"
    calls: int = 0

    def get_remaining_time_in_millis(self) -> int:
        self.calls += 1
        if len(self.remaining_ms) > 1:
            return self.remaining_ms.pop(0)
        return self.remaining_ms[0]
