"""S3 answers that depend on who asks: a missing object is 403 to a caller that may not list the bucket.

AWS (Amazon S3 API reference, HeadObject and GetObject, "Permissions",
https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html and
https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html): "If the object you
request doesn't exist, the error that Amazon S3 returns depends on whether you also have
the s3:ListBucket permission. If you have the s3:ListBucket permission on the bucket,
Amazon S3 returns an HTTP status code 404 Not Found error. If you don't have the
s3:ListBucket permission, Amazon S3 returns an HTTP status code 403 Forbidden error."
moto answers 404 to everyone.

**Who asks.** The local runner gives each function the credentials of its execution role,
as Lambda does (``AssumeRole`` on the emulator's STS: :mod:`thingpress_cli.local.runner`), so the access key of
a request names the role (moto keeps the role of every key it issued). A role's
``s3:ListBucket`` on the bucket is then decided from its policies as IAM decides it
(:func:`.iam_conditions.decision`: the role's inline and attached policies, and the
bucket policy naming the role; an explicit ``Deny`` in either wins). Any other caller
(the CLI, the tests, ``testing`` credentials) stands for the account's administrator,
who may list every bucket: moto's 404 stands.

**The request context of that check.** The pages name the permission, not a context: the
check is made with none of ``s3:prefix``'s value, so a grant limited by an ``s3:prefix``
condition does not earn the 404 here (the stricter reading: a client that handles 403 for
a missing key works under either).

Only requests without ``versionId`` (the pages' "object you request"); a missing version
keeps moto's ``NoSuchVersion``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from thingpress_cli.local.emulator.guard import Patched
from thingpress_cli.local.emulator.iam_conditions import decision

#: The request context of the ``s3:ListBucket`` check (see the module notes).
LIST_CONTEXT = {"aws:SecureTransport": "true"}
#: What :func:`install` wraps, with moto's parameters (:data:`.patches.PATCHED` includes them).
PATCHED = (
    Patched("moto.s3.responses", "S3Response.get_object", ("self",)),
    Patched("moto.s3.responses", "S3Response.head_object", ("self", "bucket_name", "query", "key_name", "headers")),
)


def caller_role(access_key: str) -> tuple[str, str] | None:
    """(account, role ARN) of the role whose temporary credentials ``access_key`` is, else None."""
    from moto.iam.models import iam_backends

    for account, backends in list(iam_backends.items()):
        for backend in list(backends.values()):
            key = backend.access_keys.get(access_key)
            if key is not None and getattr(key, "role_arn", None):
                return account, key.role_arn
    return None


def role_policies(account: str, role_arn: str) -> list[str]:
    """The role's inline and attached policy documents (none if moto does not know the role)."""
    from moto.iam.models import iam_backends

    for backend in list(iam_backends[account].values()):
        try:
            role = backend.get_role_by_arn(role_arn)
        except Exception:  # noqa: BLE001 - moto's NotFoundException
            continue
        managed = [version.document for policy in role.managed_policies.values()
                   for version in policy.versions if version.is_default and version.document]
        return [*role.policies.values(), *managed]
    return []


def may_list(account: str, role_arn: str, bucket: Any) -> bool:
    """Whether the role may ``s3:ListBucket`` on ``bucket`` (identity policies and the bucket policy)."""
    verdict = decision([*role_policies(account, role_arn), bucket.policy], action="s3:ListBucket",
                       resource=f"arn:aws:s3:::{bucket.name}", context=LIST_CONTEXT,
                       principal={"AWS": role_arn, "account": account})
    return verdict == "Allow"


def hides_missing_objects(response: Any, bucket_name: str) -> bool:
    """Whether the caller of ``response`` (a moto ``S3Response``) gets 403 for a missing object."""
    found = caller_role(response.get_access_key())
    if found is None:
        return False
    account, role_arn = found
    try:
        bucket = response.backend.get_bucket(bucket_name)
    except Exception:  # noqa: BLE001 - no such bucket: moto's own answer stands
        return False
    return not may_list(account, role_arn, bucket)


def _without_version(response: Any) -> bool:
    return not response.querystring.get("versionId")


def get_object_as_aws(get_object: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``S3Response.get_object``: ``NoSuchKey`` becomes ``AccessDenied`` for a caller that may not list."""
    from moto.s3.exceptions import MissingKey, S3AccessDeniedError

    @functools.wraps(get_object)
    def get(self: Any) -> Any:
        try:
            return get_object(self)
        except MissingKey:
            if _without_version(self) and hides_missing_objects(self, self.bucket_name):
                raise S3AccessDeniedError() from None
            raise

    return get


def head_object_as_aws(head_object: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``S3Response.head_object``: its 404 becomes 403 for a caller that may not list."""
    @functools.wraps(head_object)
    def head(self: Any, bucket_name: str, query: dict[str, Any], key_name: str, headers: dict[str, Any]) -> Any:
        status, response_headers, body = head_object(self, bucket_name, query, key_name, headers)
        if status == 404 and not query.get("versionId") and hides_missing_objects(self, bucket_name):
            return 403, {}, ""
        return status, response_headers, body

    return head


def install() -> None:
    """Missing objects answered 403 to a caller that may not list the bucket (``GetObject``, ``HeadObject``)."""
    from moto.s3.responses import S3Response

    S3Response.get_object = get_object_as_aws(S3Response.get_object)  # type: ignore[method-assign]
    S3Response.head_object = head_object_as_aws(S3Response.head_object)  # type: ignore[method-assign]
