"""The lifecycle function (``thingpress activate``/``deactivate``, thingpress.lifecycle): its queue pair
(DLQ, alarms) and the function on it (``lambdas/lifecycle``, one batch an invocation).

The commands send a job's batches to the queue with the operator's credentials; the function sets
certificate statuses and thing attributes, records the job's rows in the audit table and, after the
last batch, writes the job's results files under ``results/lifecycle/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from constructs import Construct
from thingpress import settings, thing_names
from thingpress.audit.keys import INDEX_BY_THING
from thingpress.results.keys import RESULTS_PREFIX

from stacks import defaults, iam
from stacks.constructs.artifacts import CodeArtifacts
from stacks.constructs.context import DeploymentContext
from stacks.constructs.functions import FunctionProps, QueueFunction, SharedLayer
from stacks.constructs.queues import QueuePair, QueueProps
from stacks.naming import LIFECYCLE


@dataclass(frozen=True)
class LifecycleProps:
    bucket_name: str
    bucket_arn: str
    audit_table_arn: str
    #: ``things`` and ``certificates`` (``IotResources.arns``).
    iot_arns: Mapping[str, object]
    #: settings every function gets (audit table, retention, metrics namespace), less the event bus.
    common_environment: Mapping[str, str]
    #: the importer's budget (``THINGPRESS_IOT_TPS``, JSON): the function's throttle takes it too.
    iot_tps: str
    thing_prefix: str
    thing_name_template: str
    visibility_factor: float = defaults.VISIBILITY_FACTOR
    reserve_concurrency: bool = False


class LifecycleJobs(Construct):
    """Lifecycle queue pair + the lifecycle function on it."""

    def __init__(self, scope: Construct, id_: str, *, ctx: DeploymentContext, props: LifecycleProps,
                 layer: SharedLayer, artifacts: CodeArtifacts, kms_key_arn: str):
        super().__init__(scope, id_)
        names = ctx.names
        self.queues = QueuePair(self, "queue", props=QueueProps(
            name=names.lifecycle_queue, dlq_name=names.lifecycle_dlq, arn_prefix=ctx.arn("sqs", "").rstrip(":"),
            kms_key_arn=kms_key_arn, consumer_timeout=defaults.LIFECYCLE_TIMEOUT_SECONDS,
            max_receive_count=defaults.LIFECYCLE_MAX_RECEIVE_COUNT, visibility_factor=props.visibility_factor))
        table, things, certificates = props.audit_table_arn, props.iot_arns["things"], props.iot_arns["certificates"]
        self.function = QueueFunction(self, "function", ctx=ctx, layer=layer, artifacts=artifacts,
                                      kms_key_arn=kms_key_arn, props=FunctionProps(
            key=LIFECYCLE, handler="lifecycle_handler.lambda_handler",
            description="Activates, deactivates or revokes the certificates of a thingpress lifecycle job",
            timeout=defaults.LIFECYCLE_TIMEOUT_SECONDS, memory=defaults.LIFECYCLE_MEMORY_MB, source=self.queues,
            batch_size=defaults.LIFECYCLE_BATCH_SIZE, max_concurrency=defaults.LIFECYCLE_MAX_CONCURRENCY,
            environment={**props.common_environment, "POWERTOOLS_SERVICE_NAME": "lifecycle",
                         settings.RESULTS_BUCKET: props.bucket_name, settings.IOT_TPS: props.iot_tps,
                         # the throttle splits the budget over this function's instances
                         settings.IMPORT_CONCURRENCY: str(defaults.LIFECYCLE_MAX_CONCURRENCY),
                         # how the providers name things (as they get them): device ids are resolved by it
                         **({settings.THING_PREFIX: props.thing_prefix} if props.thing_prefix else {}),
                         **({settings.THING_NAME_TEMPLATE: props.thing_name_template}
                            if props.thing_name_template != thing_names.DEFAULT_TEMPLATE else {})},
            # Decrypt: its encrypted queue; GenerateDataKey: the results files under the bucket's SSE-KMS.
            kms_actions=("kms:Decrypt", "kms:GenerateDataKey"),
            reserve_concurrency=props.reserve_concurrency,
            statements=[
                # DescribeCertificate, ListPrincipalThings and UpdateCertificate are authorized on the certificate.
                iam.statement("ReadAndSetCertificateStatus",
                              ["iot:DescribeCertificate", "iot:ListPrincipalThings", "iot:UpdateCertificate"],
                              certificates),
                iam.statement("ReadAndSetThingAttributes", ["iot:DescribeThing", "iot:UpdateThing"], things),
                # A thing's rows (by_thing), a manifest's row, the job's summary and markers; its rows (Query).
                iam.statement("ResolveEntries", ["dynamodb:Query"], [table, f"{table}/index/{INDEX_BY_THING}"]),
                iam.statement("ReadJobAndRows", ["dynamodb:GetItem"], table),
                # A batch's rows, marker and counts are one transaction (authorized as PutItem and UpdateItem).
                iam.statement("RecordJobRows", ["dynamodb:PutItem", "dynamodb:UpdateItem"], table),
                iam.statement("WriteJobResultsFiles", ["s3:PutObject", "s3:AbortMultipartUpload"],
                              f"{props.bucket_arn}/{RESULTS_PREFIX}lifecycle/*"),
            ]))
        self.name = self.function.name
        self.arn = self.function.arn
