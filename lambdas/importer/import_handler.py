"""Importer function: SQS import messages in, certificates and things in IoT Core out.

Thin by design: the import logic is ``thingpress.importer`` (in the layer). Here:
Powertools batch processing with partial batch responses (``ReportBatchItemFailures``),
structured logs keyed by manifest id and fingerprint, EMF metrics, and lazily
created clients (importing this module makes no AWS call).

Records of a batch run concurrently, at most ``WORKERS`` at a time, each in a
thread (``asyncio.to_thread``) under Powertools' ``AsyncBatchProcessor``. The IoT
token buckets are shared and thread-safe, so concurrency never raises the request
rate above the budget; it only hides call latency when the budget is higher than
what one sequential worker can use. Measured with 40 ms per IoT call
(tests/benchmarks/bench_importer_import.py): 1 worker 4.9 certificates/s; under
the default quotas (10 TPS register, one instance) 2 workers already reach the
bucket's 9.8/s; with quotas raised to 100 TPS, 4 workers 19.7/s and 8 workers 38.7/s.
``WORKERS`` is 10, a whole SQS batch at once: with 4, a batch of 10 ran as 4+4+2
and waited for its slowest record each round (local pipeline, 600 certificates,
unlimited budget: 42-45 certificates/s with 4, 49-52 with 10).
A record that fails -- transient error, or not started before the deadline --
is the only one reported in ``batchItemFailures``.

Outcomes are written once per batch: each record queues its outcome
(``Importer.handle(pending=...)``), and after the batch ``Importer.record_pending``
writes them in one DynamoDB transaction per manifest. If that write fails, every
queued record is reported in ``batchItemFailures`` and SQS delivers it again (its
IoT calls are idempotent). Completion is then checked once per batch and manifest
(``Importer.complete``): the invocation that records a manifest's last outcome
completes it, and so does any later redelivery.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from thingpress import events
from thingpress.audit import ALREADY_PRESENT, FAILED, IMPORTED, REJECTED, AuditTable
from thingpress.importer import CertificateArns, Importer, Outcome, Pending, RetryLater
from thingpress.settings import FunctionSettings
from thingpress.throttle import Throttle

logger = Logger(service="thingpress-importer")
metrics = Metrics(namespace="thingpress", service="importer")
# Even a batch where every record failed is answered with the list (no exception): same effect, clearer logs.
processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

#: records of one batch in flight at once (threads); the token buckets bound the rate.
WORKERS = 10
#: IoT client: no botocore retries -- ``Throttle`` retries with its own backoff and counts throttles.
IOT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=10,
                    max_pool_connections=WORKERS * 2)
DYNAMODB_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=WORKERS * 2)

METRIC_BY_STATUS = {IMPORTED: "Imported", ALREADY_PRESENT: "AlreadyPresent", REJECTED: "Rejected", FAILED: "Failed"}

_importer: Importer | None = None
#: manifests whose counters this invocation moved (or found moved): checked for completion after the batch.
_touched: set[str] = set()
#: this invocation's first-delivery outcomes, written together after the batch (``Importer.record_pending``).
_pending: list[Pending] = []
#: ImportLatency of the pending records, by SQS message id.
_latency: dict[str, float] = {}


def get_importer(context: LambdaContext) -> Importer:
    """The importer for this execution environment, built on first use."""
    global _importer
    if _importer is None:
        settings = FunctionSettings.from_env()
        iot = boto3.client("iot", config=IOT_CONFIG)
        dynamodb = boto3.client("dynamodb", config=DYNAMODB_CONFIG)
        arns = CertificateArns.from_function_arn(context.invoked_function_arn, region=iot.meta.region_name)
        audit_table = AuditTable(dynamodb, settings.audit_table, settings.audit_retention_days,
                                 announcer=events.announcer(settings.event_bus))
        _importer = Importer(iot, audit_table,
                             settings, arns=arns, throttle=Throttle.from_settings(settings))
    return _importer


def set_importer(importer: Importer | None) -> None:
    """Use this importer (tests, the local runner); None rebuilds from the environment on next use."""
    global _importer
    _importer = importer


def _log_keys(body: str) -> dict[str, str]:
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: data[k] for k in ("manifest_id", "fingerprint") if isinstance(data.get(k), str)}


def _import_one(importer: Importer, record: SQSRecord, deadline: float) -> Outcome:
    """Runs in a worker thread (its own copy of the log context)."""
    logger.thread_safe_append_keys(message_id=record.message_id, **_log_keys(record.body))
    receive_count = int(record.attributes.approximate_receive_count or 1)
    try:
        return importer.handle(record.body, message_id=record.message_id, receive_count=receive_count,
                               deadline=deadline, complete=False, pending=_pending)
    except RetryLater as exc:
        log = logger.error if exc.final else logger.warning
        log("import failed; %s", "recorded FAILED, going to the DLQ" if exc.final else "SQS will deliver it again",
            extra={"reason": exc.reason, "receive_count": receive_count, "final": exc.final})
        raise


def _report(outcome: Outcome, message_id: str, latency_ms: float) -> None:
    """Log line and metrics of a settled outcome."""
    if outcome.manifest_id is not None and (outcome.recorded or outcome.redelivery):
        _touched.add(outcome.manifest_id)
    logger.info("certificate %s", outcome.status, extra={
        "message_id": message_id, "manifest_id": outcome.manifest_id, "fingerprint": outcome.fingerprint,
        "status": outcome.status, "reason": outcome.reason, "certificate_id": outcome.certificate_id,
        "redelivery": outcome.redelivery, "recorded": outcome.recorded, "iot_calls": outcome.tally.calls,
        "throttled": outcome.tally.throttled})
    if outcome.tally.throttled:
        metrics.add_metric(name="Throttled", unit=MetricUnit.Count, value=outcome.tally.throttled)
    if outcome.recorded:
        metrics.add_metric(name=METRIC_BY_STATUS[outcome.status], unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ImportLatency", unit=MetricUnit.Milliseconds, value=round(latency_ms, 1))


async def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> str:
    importer = get_importer(lambda_context)
    async with _gate():
        remaining = lambda_context.get_remaining_time_in_millis() / 1000
        deadline = importer.throttle.clock() + remaining
        started = time.perf_counter()
        try:
            outcome = await asyncio.to_thread(_import_one, importer, record, deadline)
        except RetryLater as exc:
            if exc.recorded:
                _touched.add(exc.manifest_id)
            if exc.tally.throttled:
                metrics.add_metric(name="Throttled", unit=MetricUnit.Count, value=exc.tally.throttled)
            if exc.recorded:
                metrics.add_metric(name="Failed", unit=MetricUnit.Count, value=1)
            elif not exc.final:
                metrics.add_metric(name="Retried", unit=MetricUnit.Count, value=1)
            raise
        latency_ms = (time.perf_counter() - started) * 1000
        if any(item.outcome is outcome for item in _pending):
            _latency[record.message_id] = latency_ms  # reported once the batch is written
        else:
            _report(outcome, record.message_id, latency_ms)
        return outcome.status


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _gate() -> asyncio.Semaphore:
    """One semaphore per event loop (Powertools reuses the loop across invocations)."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(WORKERS)
    return gate


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    _touched.clear()
    _pending.clear()
    _latency.clear()
    response = async_process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                              context=context)
    importer = get_importer(context)
    try:
        importer.record_pending(_pending)
    except Exception:  # noqa: BLE001 -- nothing of the batch was written: SQS delivers those records again
        logger.exception("writing the batch's outcomes failed; %d records go back to SQS", len(_pending))
        order = {record.get("messageId"): i for i, record in enumerate(event.get("Records", []))}
        response.setdefault("batchItemFailures", []).extend(
            {"itemIdentifier": message_id}
            for message_id in sorted((item.message_id for item in _pending), key=lambda m: order.get(m, 0)))
        metrics.add_metric(name="Retried", unit=MetricUnit.Count, value=len(_pending))
    else:
        for item in _pending:
            _report(item.outcome, item.message_id, _latency.get(item.message_id, 0.0))
    importer.complete(_touched)
    return response
