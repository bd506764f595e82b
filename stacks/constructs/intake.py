"""Manifest intake: the manifests bucket and one manifest queue pair per vendor.

S3 event notifications are routed by key prefix ``incoming/<vendor>/`` to the
vendor's queue. There is no suffix filter on purpose: the provider checks the
suffix so a wrong file gets an audit record (REFUSED) instead of vanishing.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification, S3BucketNotificationQueue
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from cdktf_cdktf_provider_aws.s3_object import S3Object
from constructs import Construct

from stacks import defaults, iam
from stacks.constructs.context import DeploymentContext
from stacks.constructs.queues import QueuePair, QueueProps
from stacks.naming import MICROCHIP_SIGNERS_PREFIX, VENDORS, vendor_prefix
from thingpress.settings import STAGING_DAYS, STAGING_PREFIX


class ManifestIntake(Construct):
    def __init__(self, scope: Construct, id_: str, *, ctx: DeploymentContext, kms_key_arn: str,
                 provider_timeout: int, force_destroy: bool, visibility_factor: float = defaults.VISIBILITY_FACTOR):
        super().__init__(scope, id_)
        names = ctx.names
        self.bucket = S3Bucket(self, "bucket", bucket=names.bucket(ctx.account_id), force_destroy=force_destroy)
        bucket_id = self.bucket.id
        S3BucketOwnershipControls(self, "ownership", bucket=bucket_id,
                                  rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"))
        self.public_access = S3BucketPublicAccessBlock(
            self, "public-access", bucket=bucket_id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True)
        S3BucketVersioningA(self, "versioning", bucket=bucket_id,
                            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"))
        S3BucketServerSideEncryptionConfigurationA(self, "encryption", bucket=bucket_id, rule=[
            S3BucketServerSideEncryptionConfigurationRuleA(
                bucket_key_enabled=True,
                apply_server_side_encryption_by_default=(
                    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn)))])
        S3BucketLifecycleConfiguration(self, "lifecycle", bucket=bucket_id, rule=[
            S3BucketLifecycleConfigurationRule(
                id="expire-noncurrent-versions", status="Enabled",
                filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                noncurrent_version_expiration=[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                    noncurrent_days=defaults.NONCURRENT_VERSION_DAYS)],
                abort_incomplete_multipart_upload=[S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                    days_after_initiation=defaults.ABORT_MULTIPART_DAYS)]),
            # Staged reels (an Infineon bundle extracted once for the chunks of one import) are scratch.
            S3BucketLifecycleConfigurationRule(
                id="expire-staged-reels", status="Enabled",
                filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=STAGING_PREFIX)],
                expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=STAGING_DAYS)],
                noncurrent_version_expiration=[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                    noncurrent_days=1)],
                abort_incomplete_multipart_upload=[S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                    days_after_initiation=1)])])
        # Depends on the public access block: AWS refuses some policies while it is being set.
        self.policy = S3BucketPolicy(self, "policy", bucket=bucket_id, depends_on=[self.public_access],
                                     policy=iam.document(iam.deny_insecure_transport(
                                         "s3", [self.bucket.arn, f"{self.bucket.arn}/*"])))

        self.queues: dict[str, QueuePair] = {}
        for vendor in VENDORS:
            self.queues[vendor] = QueuePair(self, f"{vendor}-queue", props=QueueProps(
                name=names.manifest_queue(vendor), dlq_name=names.manifest_dlq(vendor),
                arn_prefix=ctx.arn("sqs", "").rstrip(":"), kms_key_arn=kms_key_arn,
                consumer_timeout=provider_timeout, max_receive_count=defaults.MANIFEST_MAX_RECEIVE_COUNT,
                visibility_factor=visibility_factor,
                s3_source_arn=self.bucket.arn, source_account=ctx.account_id))
        # S3 checks that it may send to every queue when the notification is created: the
        # queues carry their policies from creation, and the queue ARNs order this after them.
        S3BucketNotification(self, "notifications", bucket=bucket_id,
                             queue=[S3BucketNotificationQueue(
                                 id=f"{vendor}-manifests", queue_arn=self.queues[vendor].queue.arn,
                                 events=["s3:ObjectCreated:*"], filter_prefix=vendor_prefix(vendor))
                                 for vendor in VENDORS])

        self.signers_uri = f"s3://{self.bucket.bucket}/{MICROCHIP_SIGNERS_PREFIX}"
        for signer in ctx.config.signers:
            S3Object(self, f"signer-{signer.file_name}", bucket=bucket_id,
                     key=f"{MICROCHIP_SIGNERS_PREFIX}{signer.file_name}", content=signer.pem,
                     content_type="application/x-pem-file", server_side_encryption="aws:kms",
                     kms_key_id=kms_key_arn)
