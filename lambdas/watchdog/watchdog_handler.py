"""The watchdog function: run on a schedule, resumes idle manifests and marks STALLED ones (see thingpress.watchdog).

Thin by design: one ``Watchdog.sweep`` per invocation; clients and settings are
created on first use (importing this module makes no AWS call). Every run puts
``ManifestsStalled`` and ``ManifestsResumed`` (0 included, so the alarm always has data).
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from thingpress import events
from thingpress.audit import AuditTable
from thingpress.settings import FunctionSettings
from thingpress.watchdog import METRICS_SERVICE, RESUMED_METRIC, STALLED_METRIC, Watchdog

logger = Logger(service="thingpress-watchdog")
metrics = Metrics(namespace="thingpress", service=METRICS_SERVICE)

_watchdog: Watchdog | None = None


def get_watchdog() -> Watchdog:
    """The watchdog of this execution environment, built from the environment on first use."""
    global _watchdog
    if _watchdog is None:
        settings = FunctionSettings.from_env()
        _watchdog = Watchdog(
            audit=AuditTable(boto3.client("dynamodb"), settings.audit_table, settings.audit_retention_days,
                             announcer=events.announcer(settings.event_bus)),
            sqs=boto3.client("sqs"), manifest_queue_urls=settings.manifest_queue_urls,
            import_queue_url=settings.import_queue_url, import_dlq_url=settings.import_dlq_url or None,
            stall_after_seconds=settings.stall_after_seconds)
    return _watchdog


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = get_watchdog().sweep()
    metrics.add_metric(name=STALLED_METRIC, unit=MetricUnit.Count, value=len(result.stalled))
    metrics.add_metric(name=RESUMED_METRIC, unit=MetricUnit.Count, value=len(result.resumed))
    logger.info("sweep done", extra={"checked": result.checked, "looked_again": result.looked_again,
                                     "resumed": result.resumed, "stalled": result.stalled,
                                     "scheduled_at": event.get("time")})
    return {"checked": result.checked, "looked_again": result.looked_again, "resumed": result.resumed,
            "stalled": result.stalled}
