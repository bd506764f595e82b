"""One definition of a hardened bucket: the manifests bucket and the code bucket are both built by it.

Bucket owner enforced (no ACLs), public access blocked, versioned, SSE-KMS with the
deployment key (bucket key on), TLS-only bucket policy, noncurrent versions and
incomplete multipart uploads expire (plus any rules the caller adds).

The resources are added to the caller's scope under fixed ids (``bucket``,
``ownership``, ``public-access``, ``versioning``, ``encryption``, ``lifecycle``,
``policy``), not to a construct of their own: a bucket's Terraform address then stays
what it was, and no deployed bucket is ever replaced by this refactoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
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
from constructs import Construct

from stacks import defaults, iam


@dataclass(frozen=True)
class HardenedBucket:
    """The resources :func:`hardened_bucket` created; later resources depend on them."""

    bucket: S3Bucket
    #: AWS refuses some bucket policies while the public access block is being set
    public_access: S3BucketPublicAccessBlock
    #: objects written by the stack wait for the default encryption ...
    encryption: S3BucketServerSideEncryptionConfigurationA
    #: ... and for the TLS-only policy
    policy: S3BucketPolicy


def hardened_bucket(scope: Construct, *, name: str, kms_key_arn: str, force_destroy: bool,
                    extra_rules: Sequence[S3BucketLifecycleConfigurationRule] = ()) -> HardenedBucket:
    """Bucket ``name`` in ``scope``, hardened; ``extra_rules`` are lifecycle rules beside the default one."""
    bucket = S3Bucket(scope, "bucket", bucket=name, force_destroy=force_destroy)
    S3BucketOwnershipControls(scope, "ownership", bucket=bucket.id,
                              rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"))
    public_access = S3BucketPublicAccessBlock(
        scope, "public-access", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
        ignore_public_acls=True, restrict_public_buckets=True)
    S3BucketVersioningA(scope, "versioning", bucket=bucket.id,
                        versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"))
    encryption = S3BucketServerSideEncryptionConfigurationA(scope, "encryption", bucket=bucket.id, rule=[
        S3BucketServerSideEncryptionConfigurationRuleA(
            bucket_key_enabled=True,
            apply_server_side_encryption_by_default=(
                S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                    sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn)))])
    S3BucketLifecycleConfiguration(scope, "lifecycle", bucket=bucket.id, rule=[
        S3BucketLifecycleConfigurationRule(
            id="expire-noncurrent-versions", status="Enabled",
            filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
            noncurrent_version_expiration=[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                noncurrent_days=defaults.NONCURRENT_VERSION_DAYS)],
            abort_incomplete_multipart_upload=[S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                days_after_initiation=defaults.ABORT_MULTIPART_DAYS)]),
        *extra_rules])
    policy = S3BucketPolicy(scope, "policy", bucket=bucket.id, depends_on=[public_access],
                            policy=iam.document(iam.deny_insecure_transport("s3", [bucket.arn, f"{bucket.arn}/*"])))
    return HardenedBucket(bucket, public_access, encryption, policy)
