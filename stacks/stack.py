"""The thingpress stack: ``thingpress-<suffix>``, composed from one construct per concern."""

from __future__ import annotations

import json

from cdktf import LocalBackend, S3Backend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags, AwsProviderEndpoints
from constructs import Construct
from thingpress import settings, thing_names
from thingpress.audit.keys import INDEX_BY_STATE
from thingpress.vendors import ArchiveLimits

from stacks import defaults, iam, outputs
from stacks.config import StackConfig
from stacks.constructs.alarms import Alarms
from stacks.constructs.artifacts import CodeArtifacts
from stacks.constructs.audit_table import AuditTable
from stacks.constructs.context import DeploymentContext
from stacks.constructs.events import CompletionEvents, CompletionEventsProps
from stacks.constructs.functions import FunctionProps, QueueFunction, SharedLayer
from stacks.constructs.intake import ManifestIntake
from stacks.constructs.iot import IotResources
from stacks.constructs.kms import EncryptionKey
from stacks.constructs.lifecycle import LifecycleJobs, LifecycleProps
from stacks.constructs.queues import QueuePair, QueueProps
from stacks.constructs.results import ResultsWriter, ResultsWriterProps
from stacks.constructs.watchdog import ManifestWatchdog, WatchdogProps
from stacks.naming import (
    IMPORTER,
    LIFECYCLE,
    MICROCHIP_SIGNERS_PREFIX,
    PROJECT,
    RESULTS,
    VENDORS,
    WATCHDOG,
    provider_key,
    vendor_prefix,
)

#: every service the stack (and the local runner) talks to, for the local target's endpoints.
LOCAL_SERVICES = ("cloudwatch", "cloudwatchlogs", "dynamodb", "events", "iam", "iot", "kms", "lambda_", "s3", "sns",
                  "sqs", "sts")
METRICS_NAMESPACE = "thingpress"


class ThingpressStack(TerraformStack):
    def __init__(self, scope: Construct, config: StackConfig):
        super().__init__(scope, config.stack_name)
        self.config = config
        self._provider_and_backend(config)
        ctx = DeploymentContext(config, DataAwsPartition(self, "partition").partition,
                                DataAwsCallerIdentity(self, "account").account_id)
        names = ctx.names

        key = EncryptionKey(self, "kms", ctx=ctx)
        intake = ManifestIntake(self, "intake", ctx=ctx, kms_key_arn=key.arn,
                                provider_timeout=config.provider_timeout, force_destroy=config.ephemeral,
                                results_days=config.audit_retention_days, visibility_factor=config.visibility_factor)
        import_pair = QueuePair(self, "import-queue", props=QueueProps(
            name=names.import_queue, dlq_name=names.import_dlq, arn_prefix=ctx.arn("sqs", "").rstrip(":"),
            kms_key_arn=key.arn,
            consumer_timeout=config.importer_timeout, max_receive_count=defaults.IMPORT_MAX_RECEIVE_COUNT,
            visibility_factor=config.visibility_factor, retention_seconds=defaults.IMPORT_QUEUE_RETENTION_SECONDS))
        table = AuditTable(self, "audit", name=names.audit_table, kms_key_arn=key.arn,
                           deletion_protection=not config.ephemeral)
        iot = IotResources(self, "iot", ctx=ctx)
        layer = SharedLayer(self, "layer", ctx=ctx)
        artifacts = CodeArtifacts(self, "artifacts", ctx=ctx, kms_key_arn=key.arn)
        iot_arns = iot.arns(ctx)
        completion = CompletionEvents(self, "completion", ctx=ctx,
                                      props=CompletionEventsProps(kms_key_arn=key.arn))

        common = {
            settings.AUDIT_TABLE: table.name, settings.ENVIRONMENT: config.suffix,
            settings.EVENT_BUS: completion.bus.name,
            settings.AUDIT_RETENTION_DAYS: str(config.audit_retention_days),
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        }
        concurrency = config.import_concurrency
        iot_tps = json.dumps(dict(config.iot_tps), sort_keys=True, separators=(",", ":"))
        importer = QueueFunction(self, "importer", ctx=ctx, layer=layer, artifacts=artifacts,
                                 kms_key_arn=key.arn, props=FunctionProps(
            key=IMPORTER, handler="import_handler.lambda_handler",
            description="Registers each certificate, creates its thing, attaches policy, type and group",
            timeout=config.importer_timeout, memory=defaults.IMPORTER_MEMORY_MB, source=import_pair,
            batch_size=defaults.import_batch_size(config.iot_tps, concurrency, config.importer_timeout),
            max_concurrency=concurrency,
            environment={
                **common, "POWERTOOLS_SERVICE_NAME": "importer",
                settings.THING_TYPE: iot.thing_type_name, settings.THING_GROUP: ",".join(iot.thing_group_names),
                **({settings.POLICY_NAMES: ",".join(iot.policy_names)} if iot.per_certificate else {}),
                settings.IOT_TPS: iot_tps,
                settings.IMPORT_CONCURRENCY: str(concurrency),
                settings.MAX_RECEIVE_COUNT: str(import_pair.max_receive_count),
                settings.EXISTING_THING: config.existing_thing,
                settings.CERTIFICATE_STATUS: config.certificate_status,
            },
            # THING_GROUP and POLICY_NAMES always start with the created group / policy (a reference).
            configured={settings.THING_TYPE: config.thing_type} if config.thing_type else {},
            reserve_concurrency=config.reserved_concurrency == "mapping",
            statements=[
                # RegisterCertificateWithoutCA has no resource-level permissions (the certificate
                # does not exist before the call): the service authorization reference lists no resource type.
                iam.statement("RegisterCertificateNoResourceLevelPermissions",
                              ["iot:RegisterCertificateWithoutCA"], "*"),
                # CreateThing is authorized on the thing (and a billing group), never on the thing type.
                iam.statement("CreateThings", ["iot:CreateThing"], iot_arns["things"]),
                # AttachThingPrincipal and AttachPolicy are authorized on the certificate only.
                iam.statement("AttachCertificateToThing", ["iot:AttachThingPrincipal"], iot_arns["certificates"]),
                *([iam.statement("AttachDevicePolicyToCertificate", ["iot:AttachPolicy"], iot_arns["certificates"])]
                  if iot.per_certificate else []),
                iam.statement("AddThingToGroup", ["iot:AddThingToThingGroup"],
                              [*iot_arns["thing_groups"], iot_arns["things"]]),
                iam.statement("RecordOutcomes", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                              table.arn),
                # The completion check reads a summary with its shards: one Query (thingpress.audit).
                iam.statement("ReadManifestSummaries", ["dynamodb:Query"], table.arn),
                completion.put_statement(),
            ]))

        functions: dict[str, QueueFunction] = {IMPORTER: importer}
        for vendor in VENDORS:
            pair = intake.queues[vendor]
            env = {**common, "POWERTOOLS_SERVICE_NAME": f"provider-{vendor}",
                   settings.IMPORT_QUEUE_URL: import_pair.queue.url, settings.MANIFEST_QUEUE_URL: pair.queue.url,
                   settings.VENDOR: vendor, settings.EXPIRED_CERTIFICATES: config.expired_certificates,
                   # backpressure (thingpress.backpressure): the window is minutes of the importer's budget.
                   settings.IMPORT_WINDOW_MINUTES: f"{config.import_window_minutes:g}",
                   settings.IOT_TPS: iot_tps}
            if config.thing_prefix:
                env[settings.THING_PREFIX] = config.thing_prefix
            if config.thing_name_template != thing_names.DEFAULT_TEMPLATE:
                env[settings.THING_NAME_TEMPLATE] = config.thing_name_template
            extra = []
            ephemeral = None
            if vendor == "infineon":
                env[settings.INFINEON_BUNDLE] = config.infineon_bundle
                ephemeral = defaults.ephemeral_storage_mb(ArchiveLimits().max_spooled_bytes)
                # A reel's bundle is extracted once into a staged object that later chunks read.
                extra.append(iam.statement("StageReels", ["s3:GetObject", "s3:PutObject"],
                                           f"{intake.bucket.arn}/{settings.STAGING_PREFIX}*"))
            if vendor == "microchip":
                env[settings.MICROCHIP_SIGNERS] = intake.signers_uri
                extra.append(iam.statement("ListTrustedSigners", ["s3:ListBucket"], intake.bucket.arn,
                                           condition={"StringLike": {"s3:prefix": f"{MICROCHIP_SIGNERS_PREFIX}*"}}))
                extra.append(iam.statement("ReadTrustedSigners", ["s3:GetObject"],
                                           f"{intake.bucket.arn}/{MICROCHIP_SIGNERS_PREFIX}*"))
            key_name = provider_key(vendor)
            functions[key_name] = QueueFunction(self, key_name, ctx=ctx, layer=layer, artifacts=artifacts,
                                                kms_key_arn=key.arn,
                                                props=FunctionProps(
                key=key_name, handler=f"{vendor}_handler.lambda_handler",
                description=f"Parses and verifies {vendor} manifests; one import message per certificate",
                timeout=config.provider_timeout, memory=defaults.PROVIDER_MEMORY_MB, source=pair,
                batch_size=defaults.PROVIDER_BATCH_SIZE, max_concurrency=defaults.PROVIDER_MAX_CONCURRENCY,
                environment=env, kms_actions=("kms:Decrypt", "kms:GenerateDataKey"),
                reserve_concurrency=config.reserved_concurrency == "mapping", ephemeral_storage_mb=ephemeral,
                statements=[
                    # The bucket is versioned and the S3 event names the version: GetObject with a
                    # versionId is authorized as s3:GetObjectVersion (and only as that).
                    iam.statement("ReadOwnManifests", ["s3:GetObjectVersion"],
                                  f"{intake.bucket.arn}/{vendor_prefix(vendor)}*"),
                    *extra,
                    iam.statement("QueueImportsAndContinuations", ["sqs:SendMessage"],
                                  [import_pair.queue.arn, pair.queue.arn]),
                    iam.statement("RecordManifests", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                                      "dynamodb:BatchWriteItem"], table.arn),
                    # A summary with its shards: one Query (thingpress.audit); and the manifests started
                    # lately, read consistently for backpressure (AuditTable.manifests_in_flight).
                    iam.statement("ReadManifestSummaries", ["dynamodb:Query"], table.arn),
                    completion.put_statement("PutCompletionEventIfLastToFinish"),
                    # Backpressure: the manifests in flight and what they have queued (thingpress.backpressure).
                    iam.statement("CountManifestsInFlight", ["dynamodb:Query"],
                                  f"{table.arn}/index/{INDEX_BY_STATE}"),
                ]))

        dog = ManifestWatchdog(self, "watchdog", ctx=ctx, layer=layer, artifacts=artifacts, kms_key_arn=key.arn,
                               props=WatchdogProps(
            schedule_expression=defaults.WATCHDOG_SCHEDULE,
            stall_after_seconds=settings.STALL_TIMEOUTS * max(config.provider_timeout, config.importer_timeout),
            timeout=defaults.WATCHDOG_TIMEOUT_SECONDS, memory=defaults.WATCHDOG_MEMORY_MB,
            manifest_queues={v: intake.queues[v] for v in VENDORS}, import_queues=import_pair,
            audit_table_name=table.name, audit_table_arn=table.arn, metrics_namespace=METRICS_NAMESPACE,
            common_environment=common,
            statements=[completion.put_statement("PutCompletionEventIfLastToFinish")]))

        results = ResultsWriter(self, "results", ctx=ctx, layer=layer, artifacts=artifacts, kms_key_arn=key.arn,
                                props=ResultsWriterProps(
            bus_name=completion.bus.name, bucket_name=intake.bucket.bucket, bucket_arn=intake.bucket.arn,
            audit_table_arn=table.arn, visibility_factor=config.visibility_factor,
            reserve_concurrency=config.reserved_concurrency == "mapping",
            # The writer puts no event: no bus setting.
            common_environment={k: v for k, v in common.items() if k != settings.EVENT_BUS}))

        lifecycle = LifecycleJobs(self, "lifecycle", ctx=ctx, layer=layer, artifacts=artifacts, kms_key_arn=key.arn,
                                  props=LifecycleProps(
            bucket_name=intake.bucket.bucket, bucket_arn=intake.bucket.arn, audit_table_arn=table.arn,
            iot_arns=iot_arns, iot_tps=iot_tps, thing_prefix=config.thing_prefix,
            thing_name_template=config.thing_name_template, visibility_factor=config.visibility_factor,
            reserve_concurrency=config.reserved_concurrency == "mapping",
            # The function completes no manifest: no bus setting.
            common_environment={k: v for k, v in common.items() if k != settings.EVENT_BUS}))

        queues = {**{f"{v}_manifests": intake.queues[v] for v in VENDORS}, "import": import_pair,
                  RESULTS: results.queues, LIFECYCLE: lifecycle.queues}
        alarms = Alarms(self, "alarms", ctx=ctx, kms_key_arn=key.arn, queues=queues,
                        functions={**functions, WATCHDOG: dog, RESULTS: results, LIFECYCLE: lifecycle},
                        import_queue="import",
                        metric_alarms=[dog.stalled_alarm])

        values: dict[str, object] = {
            outputs.PROJECT_KEY: PROJECT, outputs.ENVIRONMENT: config.suffix, outputs.REGION: config.region,
            outputs.TARGET: config.target,
            outputs.BUCKET_NAME: intake.bucket.bucket, outputs.BUCKET_ARN: intake.bucket.arn,
            outputs.MICROCHIP_SIGNERS_URI: intake.signers_uri,
            outputs.IMPORT_QUEUE_URL: import_pair.queue.url, outputs.IMPORT_QUEUE_ARN: import_pair.queue.arn,
            outputs.IMPORT_DLQ_URL: import_pair.dlq.url, outputs.IMPORT_DLQ_ARN: import_pair.dlq.arn,
            outputs.AUDIT_TABLE_NAME: table.name, outputs.AUDIT_TABLE_ARN: table.arn,
            outputs.IMPORTER_FUNCTION_NAME: importer.name, outputs.IMPORTER_FUNCTION_ARN: importer.arn,
            outputs.LAYER_ARN: layer.arn, outputs.IOT_POLICY_NAME: iot.policy_name,
            outputs.THING_TYPE_NAME: iot.thing_type_name, outputs.THING_GROUP_NAME: iot.thing_group_name,
            outputs.KMS_KEY_ARN: key.arn, outputs.ALARM_TOPIC_ARN: alarms.topic.arn,
            outputs.DASHBOARD_NAME: alarms.dashboard.dashboard_name,
            outputs.WATCHDOG_FUNCTION_NAME: dog.name, outputs.WATCHDOG_SCHEDULE_RULE: dog.rule.name,
            outputs.WATCHDOG_SCHEDULE: dog.schedule_expression, outputs.THING_NAME_PREFIX: config.thing_prefix,
            outputs.THING_NAME_TEMPLATE: config.thing_name_template,
            outputs.EVENT_BUS_NAME: completion.bus.name, outputs.EVENT_BUS_ARN: completion.bus.arn,
            outputs.COMPLETION_QUEUE_URL: completion.queue.url, outputs.COMPLETION_QUEUE_ARN: completion.queue.arn,
            outputs.LIFECYCLE_QUEUE_URL: lifecycle.queues.queue.url, outputs.LIFECYCLE_FUNCTION_NAME: lifecycle.name,
            outputs.LIFECYCLE_DLQ_URL: lifecycle.queues.dlq.url, outputs.LIFECYCLE_DLQ_ARN: lifecycle.queues.dlq.arn,
            outputs.RESULTS_DLQ_URL: results.queues.dlq.url, outputs.RESULTS_DLQ_ARN: results.queues.dlq.arn,
        }
        if config.target == "local":
            values[outputs.ENDPOINT_URL] = config.endpoint
        for vendor in VENDORS:
            pair, fn = intake.queues[vendor], functions[provider_key(vendor)]
            values.update({
                outputs.vendor_key(vendor, "prefix"): vendor_prefix(vendor),
                outputs.vendor_key(vendor, "manifest_queue_url"): pair.queue.url,
                outputs.vendor_key(vendor, "manifest_queue_arn"): pair.queue.arn,
                outputs.vendor_key(vendor, "manifest_dlq_url"): pair.dlq.url,
                outputs.vendor_key(vendor, "manifest_dlq_arn"): pair.dlq.arn,
                outputs.vendor_key(vendor, "function_name"): fn.name,
                outputs.vendor_key(vendor, "function_arn"): fn.arn,
            })
        expected = outputs.contract_keys(config.target)
        if set(values) != set(expected):
            raise AssertionError(f"stack outputs differ from the contract: {sorted(set(values) ^ set(expected))}")
        for name in expected:
            TerraformOutput(self, name, value=values[name], static_id=True)

    def _provider_and_backend(self, config: StackConfig) -> None:
        tags = {"project": PROJECT, "environment": config.suffix, **config.tags}
        common = {"region": config.region, "default_tags": [AwsProviderDefaultTags(tags=tags)]}
        if config.target == "local":
            url = config.endpoint
            AwsProvider(self, "aws", **common, access_key="test", secret_key="test",
                        skip_credentials_validation=True, skip_requesting_account_id=True,
                        skip_metadata_api_check="true", skip_region_validation=True, s3_use_path_style=True,
                        endpoints=[AwsProviderEndpoints(**{s: url for s in LOCAL_SERVICES})])
        else:
            AwsProvider(self, "aws", **common)
        if config.backend == "s3":
            backend = S3Backend(self, bucket=config.state_bucket, key=f"{PROJECT}/{config.suffix}/terraform.tfstate",
                                region=config.state_region, encrypt=True)
            # cdktf 0.21's S3Backend has no use_lockfile (Terraform >= 1.10 S3-native locking);
            # the one escape hatch of the stack.
            backend.add_override("use_lockfile", True)
        else:
            # Relative to the stack's working folder cdktf.out/stacks/<stack>/: build/state/ at the repo root.
            LocalBackend(self, path=f"../../../build/state/{config.stack_name}.tfstate")
