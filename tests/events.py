"""Lambda events as AWS delivers them (an S3 notification, an SQS batch), as plain dicts.

Apart from :mod:`aws_fixtures` (which brings in-process AWS with moto) so that a process that only
needs events -- the scale benchmark's provider process, whose memory is measured -- stays light.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

REGION = "us-east-1"


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
