"""The results writer function: a ``Manifest Completed`` event in, the manifest's results files out
(see thingpress.results).

Thin by design: each SQS record is one completion event (the stack's rule on the deployment's
bus delivers it; batch size 1), handed to ``ResultsWriter.write``. A record that fails (an AWS
error, or a body that is no completion event) is reported in ``batchItemFailures``: SQS
delivers it again and, after the queue's receive count, moves it to the results DLQ (alarmed).
The writer and its clients are created on first use (importing this module makes no AWS call).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from thingpress.audit import AuditTable
from thingpress.results.writer import ResultsWriter
from thingpress.settings import RESULTS_BUCKET, FunctionSettings, SettingsError

logger = Logger(service="thingpress-results")

_writer: ResultsWriter | None = None


def get_writer() -> ResultsWriter:
    """The results writer of this execution environment, built from the environment on first use."""
    global _writer
    if _writer is None:
        settings = FunctionSettings.from_env()
        if not settings.results_bucket:
            raise SettingsError(f"environment variable {RESULTS_BUCKET} is not set")
        _writer = ResultsWriter(boto3.client("s3"),
                                AuditTable(boto3.client("dynamodb"), settings.audit_table,
                                           settings.audit_retention_days),
                                settings.results_bucket)
    return _writer


def manifest_of(body: str) -> str:
    """The manifest id of a completion event as EventBridge delivers it to SQS (the whole event)."""
    detail = json.loads(body).get("detail") or {}
    mid = detail.get("manifest_id")
    if not isinstance(mid, str) or not mid:
        raise ValueError("not a completion event: no detail.manifest_id")
    return mid


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failures = []
    for record in event.get("Records", []):
        try:
            mid = manifest_of(record["body"])
            written = get_writer().write(mid)
            logger.info("results", extra={"manifest_id": mid, "results": written})
        except Exception:  # noqa: BLE001 -- this record is retried (then dead-lettered); the others go on
            logger.exception("results not written", extra={"message_id": record.get("messageId")})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
