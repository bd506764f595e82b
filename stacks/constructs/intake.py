"""Manifest intake: the manifests bucket and one manifest queue pair per vendor.

S3 event notifications are routed by key prefix ``incoming/<vendor>/`` to the
vendor's queue. There is no suffix filter on purpose: the provider checks the
suffix so a wrong file gets an audit record (REFUSED) instead of vanishing. What
thingpress writes to the bucket itself (``staging/``, ``results/``) is outside every
vendor prefix, so it never reaches a provider.

Lifecycle: staged reels expire after ``STAGING_DAYS``, results files
(``thingpress.results``) after ``results_days``, the audit retention: a manifest's files
go when its audit rows do.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification, S3BucketNotificationQueue
from cdktf_cdktf_provider_aws.s3_object import S3Object
from constructs import Construct

from stacks import defaults
from stacks.constructs.bucket import hardened_bucket
from stacks.constructs.context import DeploymentContext
from stacks.constructs.queues import QueuePair, QueueProps
from stacks.naming import MICROCHIP_SIGNERS_PREFIX, VENDORS, vendor_prefix
from thingpress.results.keys import RESULTS_PREFIX
from thingpress.settings import STAGING_DAYS, STAGING_PREFIX


class ManifestIntake(Construct):
    def __init__(self, scope: Construct, id_: str, *, ctx: DeploymentContext, kms_key_arn: str,
                 provider_timeout: int, force_destroy: bool, results_days: int,
                 visibility_factor: float = defaults.VISIBILITY_FACTOR):
        super().__init__(scope, id_)
        names = ctx.names
        # Staged reels (an Infineon bundle extracted once for the chunks of one import) are scratch.
        staged_reels = S3BucketLifecycleConfigurationRule(
            id="expire-staged-reels", status="Enabled",
            filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=STAGING_PREFIX)],
            expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=STAGING_DAYS)],
            noncurrent_version_expiration=[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                noncurrent_days=1)],
            abort_incomplete_multipart_upload=[S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                days_after_initiation=1)])
        # Results files are written once and kept as long as the audit rows they copy; a multipart
        # upload its writer gave up is garbage after a day (the writer runs at most 15 minutes).
        results = S3BucketLifecycleConfigurationRule(
            id="expire-results", status="Enabled",
            filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=RESULTS_PREFIX)],
            expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=results_days)],
            noncurrent_version_expiration=[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                noncurrent_days=1)],
            abort_incomplete_multipart_upload=[S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                days_after_initiation=1)])
        hardened = hardened_bucket(self, name=names.bucket(ctx.account_id), kms_key_arn=kms_key_arn,
                                   force_destroy=force_destroy, extra_rules=[staged_reels, results])
        self.bucket = hardened.bucket
        bucket_id = self.bucket.id

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
