"""The results writer: completion events in, each manifest's results files out (``thingpress.results``).

A second rule on the deployment's bus (the same pattern as the completion rule:
:func:`~stacks.constructs.events.completion_pattern`) sends every ``Manifest Completed``
event to the results queue (customer-managed KMS, TLS only, only that rule may send; a DLQ,
alarmed by :class:`~stacks.constructs.alarms.Alarms`), consumed one event at a time by the
results function (``lambdas/results``, 900 s). A rule and queue of its own, not the
completion queue: that one is the consumers' ready subscription, which a consumer may drain.

The function's role may read a manifest's rows and note the files on its summary (Query and
UpdateItem on the audit table), and create objects under ``results/`` of the manifests
bucket only (PutObject: the multipart calls are authorized as it; AbortMultipartUpload for
an upload it gives up), with the deployment key for SSE-KMS and its encrypted queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from constructs import Construct
from thingpress import settings
from thingpress.results.keys import RESULTS_PREFIX

from stacks import defaults, iam
from stacks.constructs.artifacts import CodeArtifacts
from stacks.constructs.context import DeploymentContext
from stacks.constructs.events import completion_pattern, rule_arn_on_bus
from stacks.constructs.functions import FunctionProps, QueueFunction, SharedLayer
from stacks.constructs.queues import QueuePair, QueueProps
from stacks.naming import RESULTS

#: the target id of the results queue on the results rule.
QUEUE_TARGET_ID = "results-queue"


@dataclass(frozen=True)
class ResultsWriterProps:
    #: the deployment's bus (a reference: the rule is created after it).
    bus_name: str
    bucket_name: str
    bucket_arn: str
    audit_table_arn: str
    #: settings every function gets (audit table, retention, metrics namespace), less the event bus.
    common_environment: Mapping[str, str]
    visibility_factor: float = defaults.VISIBILITY_FACTOR
    reserve_concurrency: bool = False


class ResultsWriter(Construct):
    """Rule on the bus + results queue pair + the results function on it."""

    def __init__(self, scope: Construct, id_: str, *, ctx: DeploymentContext, props: ResultsWriterProps,
                 layer: SharedLayer, artifacts: CodeArtifacts, kms_key_arn: str):
        super().__init__(scope, id_)
        names = ctx.names
        self.queues = QueuePair(self, "queue", props=QueueProps(
            name=names.results_queue, dlq_name=names.results_dlq, arn_prefix=ctx.arn("sqs", "").rstrip(":"),
            kms_key_arn=kms_key_arn, consumer_timeout=defaults.RESULTS_TIMEOUT_SECONDS,
            max_receive_count=defaults.RESULTS_MAX_RECEIVE_COUNT, visibility_factor=props.visibility_factor,
            event_rule_arn=rule_arn_on_bus(ctx, names.results_rule)))
        self.rule = CloudwatchEventRule(
            self, "rule", name=names.results_rule, event_bus_name=props.bus_name,
            description="Sends thingpress completion events to the results writer", event_pattern=completion_pattern())
        CloudwatchEventTarget(self, "target", rule=self.rule.name, event_bus_name=props.bus_name,
                              target_id=QUEUE_TARGET_ID, arn=self.queues.queue.arn)
        self.function = QueueFunction(self, "function", ctx=ctx, layer=layer, artifacts=artifacts,
                                      kms_key_arn=kms_key_arn, props=FunctionProps(
            key=RESULTS, handler="results_handler.lambda_handler",
            description="Writes a completed manifest's results files (results/<manifest>/) from the audit table",
            timeout=defaults.RESULTS_TIMEOUT_SECONDS, memory=defaults.RESULTS_MEMORY_MB, source=self.queues,
            batch_size=defaults.RESULTS_BATCH_SIZE, max_concurrency=defaults.RESULTS_MAX_CONCURRENCY,
            environment={**props.common_environment, "POWERTOOLS_SERVICE_NAME": "results",
                         settings.RESULTS_BUCKET: props.bucket_name},
            # Decrypt: its encrypted queue, and a multipart upload's parts (S3 reads them back to complete
            # it); GenerateDataKey: every object it writes under the bucket's SSE-KMS.
            kms_actions=("kms:Decrypt", "kms:GenerateDataKey"),
            reserve_concurrency=props.reserve_concurrency,
            statements=[
                # CreateMultipartUpload, UploadPart and CompleteMultipartUpload are authorized as s3:PutObject.
                iam.statement("WriteResultsFiles", ["s3:PutObject", "s3:AbortMultipartUpload"],
                              f"{props.bucket_arn}/{RESULTS_PREFIX}*"),
                # The summary with its shards, then the manifest's rows a page at a time: Query only.
                iam.statement("ReadManifestRows", ["dynamodb:Query"], props.audit_table_arn),
                iam.statement("NoteResultsOnSummary", ["dynamodb:UpdateItem"], props.audit_table_arn),
            ]))
        self.name = self.function.name
        self.arn = self.function.arn
