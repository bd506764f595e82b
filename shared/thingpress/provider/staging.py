"""Infineon staging: a 7z reel cannot be entered part-way, so its selected bundle is extracted once
into a staged object (``staging_key``: same bucket, so the same KMS key; expired by the stack's
lifecycle rule on ``STAGING_PREFIX``) that every chunk reads from its cursor like a line format.
A chunk that finds the staged object gone (404, or 403 as S3 answers a reader that may not list
the bucket) extracts it again (``stage_reel``)."""

from __future__ import annotations

import io
import tempfile
from typing import Any

from botocore.exceptions import ClientError

from thingpress.audit.table import AuditTable
from thingpress.provider.queue_messages import ObjectRef
from thingpress.provider.reading import READ_CHUNK, HashingReader, open_object
from thingpress.provider.telemetry import logger
from thingpress.settings import STAGING_PREFIX
from thingpress.vendors import VENDORS, ParseOptions

_STAGE_IN_MEMORY = 8 * 1024 * 1024
#: HeadObject's answers for a staged object that is gone (the lifecycle rule expires ``STAGING_PREFIX``
#: after a week; a manifest's dead-lettered message lives two, so a redrive can come after it).
#: 403 too: "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code
#: 403 Forbidden error" for a missing object (HeadObject API reference), and the provider role may
#: not list the bucket. Least privilege chose this over granting s3:ListBucket on ``staging/``: the
#: provider never lists, and the S3 pages name the permission without the request context of that
#: check, so a grant narrowed by an ``s3:prefix`` condition need not earn the 404 at all. Taking a
#: 403 for "gone" is safe: the staged key is the provider's own, and staging again re-reads the
#: reel (its version) and rewrites the same object; a real permission fault then fails the rewrite
#: or the read that follows (``open_object``: a refusal naming the manifest), never five retries.
_STAGED_GONE = frozenset({"404", "NoSuchKey", "NotFound", "403", "AccessDenied", "Forbidden"})


def staging_key(mid: str) -> str:
    """Where a manifest's staged object lives (the stack expires ``STAGING_PREFIX`` by a lifecycle rule)."""
    return f"{STAGING_PREFIX}{mid}.staged"


def stage_reel(s3: Any, audit: AuditTable, vendor: str, mid: str, ref: ObjectRef, summary: dict[str, Any],
               options: ParseOptions) -> tuple[ObjectRef, str]:
    """The staged object of a reel and the reel's SHA-256; extracts and stages the reel when
    it is not staged yet, or its staged object expired (the lifecycle rule on ``STAGING_PREFIX``)."""
    staged = ObjectRef(ref.bucket, staging_key(mid))
    if summary.get("staged") and summary.get("reel_sha256"):
        try:
            s3.head_object(Bucket=staged.bucket, Key=staged.key)
            return ObjectRef(staged.bucket, staged.key, size=summary.get("staged_size")), summary["reel_sha256"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in _STAGED_GONE:
                raise
            logger.info("staged reel expired; extracting it again", extra={"staged": staged.key, "answer": code})
    stage = VENDORS[vendor].stage
    assert stage is not None
    with open_object(s3, ref) as body, tempfile.SpooledTemporaryFile(max_size=_STAGE_IN_MEMORY) as spool:
        reader = HashingReader(body)
        count = stage(io.BufferedReader(reader, buffer_size=READ_CHUNK), options, spool)
        reader.drain()
        size = spool.tell()
        spool.seek(0)
        # Same bucket, so the bucket's default encryption (the stack's KMS key) applies.
        s3.put_object(Bucket=staged.bucket, Key=staged.key, Body=spool, ContentLength=size)
    sha256 = reader.sha256.hexdigest()
    audit.set_staged(mid, staged.key, size=size, sha256=sha256)
    logger.info("reel staged", extra={"staged": staged.key, "files": count, "bytes": size})
    return ObjectRef(staged.bucket, staged.key, size=size), sha256
