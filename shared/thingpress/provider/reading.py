"""Reading a manifest object from S3: from a cursor's byte offset on (``open_object``: a ranged GET
of the exact version), hashing what is read (``HashingReader``), and the whole object's SHA-256
(``digest``: read again when a chunk started at a cursor)."""

from __future__ import annotations

import hashlib
import io
from typing import Any

from botocore.exceptions import ClientError

from thingpress.provider.failures import Gone
from thingpress.provider.queue_messages import ObjectRef

#: the largest manifest object accepted: a chunk that starts at a cursor hashes the whole object
#: once more when it reaches the end (the summary's sha256), which must fit in one invocation.
MAX_MANIFEST_BYTES = 10 * 1024**3
READ_CHUNK = 256 * 1024


class HashingReader(io.RawIOBase):
    """A raw binary stream over ``source`` that hashes (SHA-256) and counts what is read."""

    def __init__(self, source: Any):
        super().__init__()
        self._source = source
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.size += n
        return n

    def drain(self) -> None:
        """Read (and hash) whatever the parser left unread."""
        while data := self._source.read(READ_CHUNK):
            self.sha256.update(data)
            self.size += len(data)


def open_object(s3: Any, ref: ObjectRef, offset: int = 0) -> Any:
    """The object's body from byte ``offset`` on (a ranged GET), streaming."""
    kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        kwargs["VersionId"] = ref.version_id
    elif ref.etag:
        kwargs["IfMatch"] = ref.etag
    if offset:
        if ref.size is not None and offset >= ref.size:
            return io.BytesIO(b"")  # the cursor stands at the end: S3 would answer 416
        kwargs["Range"] = f"bytes={offset}-"
    try:
        return s3.get_object(**kwargs)["Body"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "InvalidRange":  # nothing after the cursor
            return io.BytesIO(b"")
        if code in ("NoSuchKey", "NoSuchVersion", "404"):
            raise Gone("the object no longer exists") from None
        # Not transient either: S3 answers AccessDenied for a missing key when the reader may not list the bucket.
        if code in ("AccessDenied", "403"):
            raise Gone(f"access denied reading the object ({code}): it is missing, or the provider may not "
                       "read it") from None
        if code in ("PreconditionFailed", "412"):
            raise Gone("the object was replaced before it could be read (ETag changed); "
                       "the new version has its own event") from None
        raise


def digest(s3: Any, ref: ObjectRef, reader: HashingReader, *, whole: bool) -> str:
    """The SHA-256 of the whole object: the reader's, if it read from the top; else read again."""
    if whole:
        reader.drain()
        return reader.sha256.hexdigest()
    # A chunk that started at a cursor saw only the tail: hash the object once more, streaming.
    with open_object(s3, ref, 0) as body:
        again = HashingReader(body)
        again.drain()
        return again.sha256.hexdigest()
