"""The scheduled watchdog: an EventBridge rule runs ``lambdas/watchdog`` every few minutes.

The function (``thingpress.watchdog``) resumes manifests that made no progress
for ``stall_after_seconds`` and marks STALLED the ones nothing can finish. Its own
role may only read and mark manifest summaries (the ``by_state`` index, GetItem,
UpdateItem on the audit table), send continuations to the manifest queues and read
the import queue's and DLQ's message counts. The alarm on ``ManifestsStalled`` is
created by :class:`~stacks.constructs.alarms.Alarms` from :attr:`ManifestWatchdog.stalled_alarm`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from constructs import Construct
from thingpress import settings, watchdog
from thingpress.audit.keys import INDEX_BY_STATE

from stacks import iam
from stacks.constructs.alarms import MetricAlarmSpec
from stacks.constructs.artifacts import CodeArtifacts
from stacks.constructs.context import DeploymentContext
from stacks.constructs.functions import SharedLayer, function_resources
from stacks.constructs.queues import QueuePair
from stacks.naming import WATCHDOG


@dataclass(frozen=True)
class WatchdogProps:
    #: EventBridge schedule expression, e.g. ``rate(5 minutes)``.
    schedule_expression: str
    #: a manifest with no progress for this long is resumed or marked STALLED (2x the provider timeout).
    stall_after_seconds: int
    timeout: int
    memory: int
    #: vendor -> its manifest queue pair (continuations go to ``queue``).
    manifest_queues: Mapping[str, QueuePair]
    #: the import queue pair (its queue and DLQ are checked empty before STALLED).
    import_queues: QueuePair
    audit_table_name: str
    audit_table_arn: str
    #: the ``POWERTOOLS_METRICS_NAMESPACE`` of the stack.
    metrics_namespace: str
    #: settings every function gets (audit table, retention, metrics namespace).
    common_environment: Mapping[str, str]
    #: further statements of the watchdog's role (the completion event it puts when it completes a manifest).
    statements: Sequence[dict[str, Any]] = ()


class ManifestWatchdog(Construct):
    """Function + schedule rule + target + invoke permission (runs may overlap: a sweep is idempotent)."""

    def __init__(self, scope: Construct, id_: str, *, ctx: DeploymentContext, props: WatchdogProps,
                 layer: SharedLayer, artifacts: CodeArtifacts, kms_key_arn: str):
        super().__init__(scope, id_)
        names = ctx.names
        if not props.schedule_expression.startswith(("rate(", "cron(")):
            raise ValueError(f"watchdog schedule {props.schedule_expression!r} is not rate(...) or cron(...)")
        queue_urls = {vendor: pair.queue.url for vendor, pair in props.manifest_queues.items()}
        parts = function_resources(
            self, ctx=ctx, key=WATCHDOG, handler="watchdog_handler.lambda_handler",
            description="Resumes manifests that made no progress; marks STALLED what nothing can finish",
            timeout=props.timeout, memory=props.memory, layer=layer, artifacts=artifacts, kms_key_arn=kms_key_arn,
            kms_actions=("kms:Decrypt", "kms:GenerateDataKey"),
            environment={
                **props.common_environment, "POWERTOOLS_SERVICE_NAME": watchdog.METRICS_SERVICE,
                settings.IMPORT_QUEUE_URL: props.import_queues.queue.url,
                settings.IMPORT_DLQ_URL: props.import_queues.dlq.url,
                settings.MANIFEST_QUEUE_URLS: json.dumps(queue_urls, sort_keys=True, separators=(",", ":")),
                settings.STALL_AFTER_SECONDS: str(props.stall_after_seconds),
            },
            statements=[
                iam.statement("FindIdleManifests", ["dynamodb:Query"],
                              f"{props.audit_table_arn}/index/{INDEX_BY_STATE}"),
                # A summary with its shards is one Query; marking STALLED is a transaction that checks
                # every shard (TransactWriteItems is authorized as the actions it holds).
                iam.statement("ReadAndMarkManifests", ["dynamodb:Query", "dynamodb:UpdateItem",
                                                       "dynamodb:ConditionCheckItem"], props.audit_table_arn),
                iam.statement("SendContinuations", ["sqs:SendMessage"],
                              [pair.queue.arn for pair in props.manifest_queues.values()]),
                iam.statement("CountImportMessages", ["sqs:GetQueueAttributes"],
                              [props.import_queues.queue.arn, props.import_queues.dlq.arn]),
                *props.statements,
            ])
        self.function, self.role, self.log_group = parts.function, parts.role, parts.log_group
        self.rule = CloudwatchEventRule(self, "schedule", name=names.schedule(WATCHDOG),
                                        description="Runs the thingpress watchdog",
                                        schedule_expression=props.schedule_expression)
        CloudwatchEventTarget(self, "target", rule=self.rule.name, target_id=WATCHDOG, arn=self.function.arn)
        LambdaPermission(self, "invoke", statement_id="EventBridgeRunsWatchdog", action="lambda:InvokeFunction",
                         function_name=self.function.function_name, principal="events.amazonaws.com",
                         source_arn=self.rule.arn)
        self.name = self.function.function_name
        self.arn = self.function.arn
        self.schedule_expression = props.schedule_expression
        self.stalled_alarm = MetricAlarmSpec(
            what="manifests-stalled", description="the watchdog marked a manifest STALLED (see thingpress status)",
            namespace=props.metrics_namespace, metric=watchdog.STALLED_METRIC,
            dimensions={"service": watchdog.METRICS_SERVICE})
