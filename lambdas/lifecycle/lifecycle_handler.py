"""The lifecycle function: a batch of a lifecycle job in, its certificates' statuses set, its rows
recorded once (see thingpress.lifecycle).

Thin by design: each SQS record is one batch message (the command sends them), handed to
``LifecycleWorker.handle`` with the invocation's deadline (the throttle stops before it) and the
record's ``SenderId`` (who sent it, as SQS saw it: recorded beside the command's ``requested_by``) and
``SentTimestamp`` (when: the worker reads the eventually consistent ``by_thing`` index no sooner than
two seconds after it, so a thing imported just before the request is found).
A record that fails (a transient AWS error, the deadline, a body that is no batch) is reported in
``batchItemFailures``: SQS delivers it again and, after the queue's receive count, moves it to the
lifecycle DLQ (alarmed). The worker and its clients are created on first use.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from thingpress.lifecycle.jobs import LIFECYCLE_TPS
from thingpress.lifecycle.resolve import Resolver
from thingpress.lifecycle.store import JobTable
from thingpress.lifecycle.worker import LifecycleWorker
from thingpress.settings import RESULTS_BUCKET, FunctionSettings, SettingsError
from thingpress.thing_names import ThingNameTemplate
from thingpress.throttle import Throttle

logger = Logger(service="thingpress-lifecycle")

_worker: LifecycleWorker | None = None


def get_worker() -> LifecycleWorker:
    """The worker of this execution environment, built from the environment on first use."""
    global _worker
    if _worker is None:
        settings = FunctionSettings.from_env()
        if not settings.results_bucket:
            raise SettingsError(f"environment variable {RESULTS_BUCKET} is not set")
        iot = boto3.client("iot")
        table = JobTable(boto3.client("dynamodb"), settings.audit_table, settings.audit_retention_days)
        throttle = Throttle({**LIFECYCLE_TPS, **settings.iot_tps}, settings.import_concurrency)
        resolver = Resolver(table, iot, throttle, ThingNameTemplate(settings.thing_name_template,
                                                                    settings.thing_prefix))
        _worker = LifecycleWorker(iot, table, resolver, throttle, s3=boto3.client("s3"),
                                  bucket=settings.results_bucket)
    return _worker


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failures = []
    worker = get_worker()
    for record in event.get("Records", []):
        try:
            deadline = worker.throttle.deadline_after(context.get_remaining_time_in_millis() / 1000)
            attributes = record.get("attributes") or {}
            sent = attributes.get("SentTimestamp")
            job = worker.handle(record["body"], sender_id=attributes.get("SenderId"),
                                sent_at=int(sent) / 1000 if sent else None, deadline=deadline)
            logger.info("batch done", extra={"job_id": job.get("job_id"), "state": job.get("state"),
                                             "entries_done": job.get("entries_done"), "entries": job.get("entries")})
        except Exception:  # noqa: BLE001 -- this record is retried (then dead-lettered); the others go on
            logger.exception("batch not done", extra={"message_id": record.get("messageId")})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
