"""The Lambda code bucket: every function's zip is an S3 object that ``CreateFunction`` reads.

Why S3 and not ``filename``: with ``filename`` the AWS provider takes one global lock
around the whole create of every ``aws_lambda_function`` (``resourceFunctionCreate`` in
internal/service/lambda/function.go: ``conns.GlobalMutexKV.Lock`` "so that we're only
reading one function into memory at a time"), and each create then waits at least 5 s
for the function to be Active (``waitFunctionCreated``, ``Delay: 5 * time.Second``): the
functions were created one after another, 5 s apart. With ``s3_bucket``/``s3_key`` there
is no lock and they are created together.

Why a bucket of its own and not a prefix of the manifests bucket: the manifests bucket is
the data plane (operators and vendor pipelines upload there, its events feed the queues,
the providers read their prefixes, it is never force-destroyed outside ephemeral
environments); the code is the deployment plane (only the deployer writes and Lambda reads
it with the deployer's credentials, everything in it is rebuilt from the repository). A
writer of manifests can therefore never replace code, and the artifacts bucket can be
emptied and destroyed with the stack.

Hardened as the manifests bucket is (one definition: :mod:`stacks.constructs.bucket`): bucket owner enforced (no ACLs), public access
blocked, versioned, SSE-KMS with the deployment key (bucket key on), TLS-only policy,
noncurrent versions and incomplete uploads expire. Objects are keyed by their content
hash (``functions/<key>/<hash>.zip``), so a new build is a new key and Terraform updates
the function; ``source_code_hash`` is kept on the function as well.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.s3_object import S3Object
from constructs import Construct

from stacks import packaging
from stacks.constructs.bucket import hardened_bucket
from stacks.constructs.context import DeploymentContext

#: key prefix of the function zips.
FUNCTIONS_PREFIX = "functions/"


def object_key(artifact: packaging.Artifact, key: str) -> str:
    """``functions/<function key>/<content hash>.zip``: a new build is a new object."""
    digest = artifact.sha256_b64.replace("+", "-").replace("/", "_").rstrip("=")
    return f"{FUNCTIONS_PREFIX}{key}/{digest}.zip"


class CodeArtifacts(Construct):
    """The code bucket; :meth:`function_code` uploads one function's zip as an object in it.

    ``kms_key_arn``: the deployment key (SSE-KMS of every object). The bucket is always
    destroyable with the stack (``force_destroy``): everything in it is rebuilt from the repository.
    """

    def __init__(self, scope: Construct, id_: str, *, ctx: DeploymentContext, kms_key_arn: str):
        super().__init__(scope, id_)
        self.kms_key_arn = kms_key_arn
        hardened = hardened_bucket(self, name=ctx.names.artifacts_bucket(ctx.account_id), kms_key_arn=kms_key_arn,
                                   force_destroy=True)
        self.bucket, self.encryption, self.policy = hardened.bucket, hardened.encryption, hardened.policy

    def function_code(self, scope: Construct, key: str, artifact: packaging.Artifact, asset_path: str) -> S3Object:
        """The zip of function ``key`` as an object (in ``scope``), encrypted with the deployment key.

        After the bucket policy (TLS-only) and the default encryption are in place, so no
        object is ever written before the bucket's rules hold.
        """
        return S3Object(scope, "code", bucket=self.bucket.id, key=object_key(artifact, key), source=asset_path,
                        source_hash=artifact.sha256_b64, content_type="application/zip",
                        server_side_encryption="aws:kms", kms_key_id=self.kms_key_arn,
                        depends_on=[self.policy, self.encryption])
