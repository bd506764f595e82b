"""The customer-managed KMS key every encrypted resource of the stack uses."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from stacks import defaults, iam
from stacks.constructs.context import DeploymentContext
from stacks.constructs.events import bus_arn

#: explicit key administration and use for the account (no kms:* wildcard).
ACCOUNT_ACTIONS = (
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:CreateGrant", "kms:Decrypt", "kms:DeleteAlias",
    "kms:DescribeKey", "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation",
    "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus", "kms:ListAliases", "kms:ListGrants", "kms:ListKeyPolicies",
    "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:RetireGrant",
    "kms:RevokeGrant", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion", "kms:TagResource",
    "kms:UntagResource", "kms:UpdateAlias", "kms:UpdateKeyDescription",
)
#: No kms:DescribeKey: its request has no encryption context, so under the statement's
#: kms:EncryptionContext condition it could never be allowed (the condition key does not exist for it).
LOGS_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
                "kms:GenerateDataKeyWithoutPlaintext")
#: S3 (event notifications into encrypted queues), CloudWatch (alarms into the encrypted topic) and
#: EventBridge (the completion rule into its encrypted queue).
SERVICE_PRINCIPALS = ("s3.amazonaws.com", "cloudwatch.amazonaws.com", "events.amazonaws.com")
SERVICE_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
#: The key policy AWS documents for an event bus encrypted with a customer managed key (EventBridge user
#: guide, "Encrypting EventBridge event buses with AWS KMS keys", "AWS KMS key policy for event bus").
EVENT_BUS_KEY_POLICY_PAGE = ("https://docs.aws.amazon.com/eventbridge/latest/userguide/"
                             "eb-encryption-event-bus-cmkey.html#eb-encryption-key-policy-bus")


def key_policy(ctx: DeploymentContext) -> str:
    # In a key policy the resource is always "*": it means this key.
    return iam.document(
        iam.statement("AccountAdministersAndUsesKeyThroughIam", ACCOUNT_ACTIONS, "*",
                      principal={"AWS": f"arn:{ctx.partition}:iam::{ctx.account_id}:root"}),
        # The regional Logs principal, only for this deployment's function log groups.
        iam.statement("CloudWatchLogsEncryptsThisDeploymentsLogGroups", LOGS_ACTIONS, "*",
                      principal={"Service": f"logs.{ctx.region}.amazonaws.com"},
                      condition={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": ctx.arn(
                          "logs", f"log-group:{ctx.names.log_group_prefix}*")}}),
        # No source condition: AWS's documented statements for S3 -> encrypted SQS and
        # CloudWatch -> encrypted SNS have none, and a wrong one drops events silently.
        # Who may deliver is decided by the queue and topic policies (aws:SourceArn).
        iam.statement("ServicesDeliverToEncryptedQueuesAndTopic", SERVICE_ACTIONS, "*",
                      principal={"Service": list(SERVICE_PRINCIPALS)}),
        # The bus encrypted with this key, in the shape AWS documents (EVENT_BUS_KEY_POLICY_PAGE):
        # kms:DescribeKey with no condition (EventBridge resolves the key and checks it is symmetric
        # when the bus is created or updated; AWS documents no aws:SourceArn in that request, and a
        # condition on a key the request lacks denies it: the bus would not deploy) ...
        iam.statement("EventBridgeValidatesKeyPermission", ["kms:DescribeKey"], "*",
                      principal={"Service": "events.amazonaws.com"}),
        # ... and the data-key actions for this deployment's bus only: its ARN as the encryption
        # context and as aws:SourceArn, the conditions of the page's statement. (EventBridge's use of
        # the key for its SQS target is ServicesDeliverToEncryptedQueuesAndTopic's, unconditioned as
        # documented for that path.)
        iam.statement("EventBridgeEncryptsThisDeploymentsBus", SERVICE_ACTIONS, "*",
                      principal={"Service": "events.amazonaws.com"},
                      condition={"StringEquals": {"kms:EncryptionContext:aws:events:event-bus:arn": bus_arn(ctx),
                                                  "aws:SourceArn": bus_arn(ctx)}}),
    )


class EncryptionKey(Construct):
    """KMS key with yearly rotation and a policy for Logs, S3, SQS and SNS use."""

    def __init__(self, scope: Construct, id_: str, *, ctx: DeploymentContext):
        super().__init__(scope, id_)
        self.key = KmsKey(self, "key", description=f"thingpress {ctx.config.suffix}: manifests, queues, audit, logs",
                          enable_key_rotation=True, deletion_window_in_days=defaults.KMS_DELETION_WINDOW_DAYS,
                          policy=key_policy(ctx))
        KmsAlias(self, "alias", name=ctx.names.kms_alias, target_key_id=self.key.key_id)
        self.arn = self.key.arn
