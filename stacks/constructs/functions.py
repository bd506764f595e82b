"""The shared layer, the function resources every function has (role, logs, code) and the SQS-triggered functions."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import AssetType, TerraformAsset
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lambda_event_source_mapping import (
    LambdaEventSourceMapping,
    LambdaEventSourceMappingScalingConfig,
)
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionEnvironment,
    LambdaFunctionEphemeralStorage,
    LambdaFunctionLoggingConfig,
    LambdaFunctionTracingConfig,
)
from cdktf_cdktf_provider_aws.lambda_layer_version import LambdaLayerVersion
from cdktf_cdktf_provider_aws.s3_object import S3Object
from constructs import Construct

from stacks import defaults, guards, iam, packaging
from stacks.constructs.artifacts import CodeArtifacts
from stacks.constructs.context import DeploymentContext
from stacks.constructs.queues import QueuePair


def _asset(scope: Construct, artifact: packaging.Artifact) -> TerraformAsset:
    # The asset folder is named by a hash of the build inputs, so the synthesized
    # JSON holds a relative, machine-independent path.
    tag = hashlib.sha256(artifact.source_hash.encode()).hexdigest()[:32]
    return TerraformAsset(scope, "asset", path=str(artifact.path), type=AssetType.FILE, asset_hash=tag)


class SharedLayer(Construct):
    """``shared/`` + pinned dependencies for the configured runtime and architecture."""

    def __init__(self, scope: Construct, id_: str, *, ctx: DeploymentContext):
        super().__init__(scope, id_)
        cfg = ctx.config
        self.artifact = packaging.build_layer(cfg.python_version, cfg.architecture)
        asset = _asset(self, self.artifact)
        self.layer = LambdaLayerVersion(
            self, "layer", layer_name=ctx.names.layer, filename=asset.path,
            source_code_hash=self.artifact.source_hash, compatible_runtimes=[cfg.runtime],
            compatible_architectures=[cfg.architecture],
            description="thingpress shared code + pinned dependencies (boto3 bundled)")
        self.arn = self.layer.arn


@dataclass(frozen=True)
class FunctionProps:
    key: str
    handler: str
    description: str
    timeout: int
    memory: int
    source: QueuePair
    batch_size: int
    max_concurrency: int
    #: setting name -> value (tokens of stack resources for resource names).
    environment: Mapping[str, str]
    #: statements of the function's own inline policy (logs, X-Ray and its queue are added).
    statements: Sequence[dict[str, Any]]
    #: setting name -> literal configured by the user (an existing resource's name).
    configured: Mapping[str, str] = field(default_factory=dict)
    #: KMS actions on the deployment key: Decrypt reads the encrypted source queue; a function
    #: that sends to an encrypted queue also needs GenerateDataKey (SQS SSE, "Key management").
    kms_actions: Sequence[str] = ("kms:Decrypt",)
    #: Reserve ``max_concurrency`` for the function (opt-in: Lambda refuses a reservation that
    #: leaves the account under its unreserved minimum, as on every new account with a limit of 10;
    #: the event source mapping's maximum concurrency caps fan-out without one).
    reserve_concurrency: bool = False
    #: /tmp size in MB (Lambda's default 512 when None).
    ephemeral_storage_mb: int | None = None


@dataclass(frozen=True)
class FunctionParts:
    """What :func:`function_resources` creates for one function."""

    log_group: CloudwatchLogGroup
    role: IamRole
    policy: IamRolePolicy
    artifact: packaging.Artifact
    #: the function's zip in the code bucket (what ``CreateFunction`` reads).
    code: S3Object
    function: LambdaFunction


def function_resources(scope: Construct, *, ctx: DeploymentContext, key: str, handler: str, description: str,
                       timeout: int, memory: int, environment: Mapping[str, str],
                       statements: Sequence[dict[str, Any]], layer: SharedLayer, artifacts: CodeArtifacts,
                       kms_key_arn: str,
                       kms_actions: Sequence[str] = ("kms:Decrypt",), reserved_concurrency: int | None = None,
                       ephemeral_storage_mb: int | None = None, configured: Mapping[str, str] | None = None,
                       errors: Sequence[str] = ()) -> FunctionParts:
    """A function's log group (KMS), role, least-privilege inline policy and the function itself, in ``scope``.

    ``statements`` are the function's own; writing its logs, X-Ray and the
    deployment key (``kms_actions``) are added. ``reserved_concurrency``: None
    reserves nothing (see :attr:`FunctionProps.reserve_concurrency`);
    ``ephemeral_storage_mb``: /tmp, Lambda's default 512 when None. ``errors``: the
    caller's own guard failures, raised together with the environment guards'.
    The code is an object of ``artifacts`` (not ``filename``: see :mod:`stacks.constructs.artifacts`),
    so the functions of the stack are created concurrently.
    """
    names, cfg = ctx.names, ctx.config
    name = names.function(key)
    found = [*guards.check_environment(scope, name, environment, configured or {}), *errors]
    if found:
        raise guards.GuardError(found)
    log_group = CloudwatchLogGroup(scope, "logs", name=names.log_group(key),
                                   retention_in_days=cfg.log_retention_days, kms_key_id=kms_key_arn)
    role = IamRole(scope, "role", name=names.role(key), assume_role_policy=iam.document(
        iam.statement("LambdaAssumesRole", ["sts:AssumeRole"], None, principal={"Service": "lambda.amazonaws.com"},
                      condition={"StringEquals": {"aws:SourceAccount": ctx.account_id}})))
    everything = [
        # Both are authorized on the log stream (service authorization reference): a bare
        # log-group ARN would be one IAM ignores.
        iam.statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                      f"{log_group.arn}:log-stream:*"),
        # X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions.
        iam.statement("XRayTracesNoResourceLevelPermissions",
                      ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*"),
        iam.statement("UseDeploymentKey", list(kms_actions), kms_key_arn),
        *statements,
    ]
    policy = IamRolePolicy(scope, "policy", role=role.id, name="least-privilege", policy=iam.document(*everything))
    artifact = packaging.build_function(key)
    asset = _asset(scope, artifact)
    code = artifacts.function_code(scope, key, artifact, asset.path)
    function = LambdaFunction(
        scope, "function", function_name=name, description=description, role=role.arn,
        handler=handler, runtime=cfg.runtime, architectures=[cfg.architecture],
        s3_bucket=code.bucket, s3_key=code.key, source_code_hash=artifact.source_hash, layers=[layer.arn],
        timeout=timeout, memory_size=memory, reserved_concurrent_executions=reserved_concurrency,
        ephemeral_storage=LambdaFunctionEphemeralStorage(size=ephemeral_storage_mb) if ephemeral_storage_mb else None,
        tracing_config=LambdaFunctionTracingConfig(mode=defaults.TRACING_MODE),
        logging_config=LambdaFunctionLoggingConfig(log_format="JSON", log_group=log_group.name),
        environment=LambdaFunctionEnvironment(variables=dict(environment)),
        kms_key_arn=kms_key_arn,
        depends_on=[log_group, policy],
    )
    return FunctionParts(log_group, role, policy, artifact, code, function)


class QueueFunction(Construct):
    """A function fed by a queue: partial batch responses, bounded concurrency, traced, logged to KMS."""

    def __init__(self, scope: Construct, id_: str, *, ctx: DeploymentContext, props: FunctionProps,
                 layer: SharedLayer, artifacts: CodeArtifacts, kms_key_arn: str):
        super().__init__(scope, id_)
        name = ctx.names.function(props.key)
        errors = []
        if props.source.visibility_timeout < props.timeout:
            errors.append(f"function {name}: queue visibility timeout {props.source.visibility_timeout}s is below "
                          f"the function timeout {props.timeout}s")
        if not defaults.MIN_ESM_CONCURRENCY <= props.max_concurrency <= defaults.MAX_ESM_CONCURRENCY:
            errors.append(f"function {name}: maximum concurrency {props.max_concurrency} is outside "
                          f"{defaults.MIN_ESM_CONCURRENCY}..{defaults.MAX_ESM_CONCURRENCY}")
        queue = props.source.queue
        parts = function_resources(
            self, ctx=ctx, key=props.key, handler=props.handler, description=props.description,
            timeout=props.timeout, memory=props.memory, environment=props.environment,
            configured=props.configured, layer=layer, artifacts=artifacts, kms_key_arn=kms_key_arn,
            kms_actions=props.kms_actions,
            reserved_concurrency=props.max_concurrency if props.reserve_concurrency else None,
            ephemeral_storage_mb=props.ephemeral_storage_mb, errors=errors,
            statements=[
                # What the event source mapping calls with the function's role.
                iam.statement("ConsumeOwnQueue", ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                              queue.arn),
                *props.statements])
        self.log_group, self.role, self.policy = parts.log_group, parts.role, parts.policy
        self.artifact, self.code, self.function = parts.artifact, parts.code, parts.function
        # After the queue's redrive policy: nothing is consumed before a failing message can reach the DLQ.
        self.mapping = LambdaEventSourceMapping(
            self, "trigger", event_source_arn=queue.arn, function_name=self.function.arn,
            batch_size=props.batch_size, function_response_types=["ReportBatchItemFailures"],
            scaling_config=LambdaEventSourceMappingScalingConfig(maximum_concurrency=props.max_concurrency),
            depends_on=[props.source.redrive],
        )
        self.name = self.function.function_name
        self.arn = self.function.arn
