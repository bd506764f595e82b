"""The manifest queue's messages: an S3 event naming manifest objects (``ObjectRef``), or a
continuation of our own (``Continuation``, schema ``CONTINUE_SCHEMA``); ``parse_queue_message``
reads one, ``UnreadableMessage`` refuses anything else."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from thingpress.audit.chain import Handle
from thingpress.errors import Refused
from thingpress.provider.telemetry import logger

CONTINUE_SCHEMA = "thingpress.continue/1"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One exact S3 object version named by an event or a continuation."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None

    @property
    def version(self) -> str:
        """What identifies the version: the version id, else the ETag (unversioned bucket)."""
        return self.version_id or self.etag or ""

    @property
    def uri(self) -> str:
        suffix = f" (version {self.version_id})" if self.version_id else ""
        return f"s3://{self.bucket}/{self.key}{suffix}"


@dataclass(frozen=True, slots=True)
class Continuation:
    """Carry on with a manifest, as ``handle`` (``thingpress.provider``, "One live chain")."""

    manifest_id: str
    vendor: str
    ref: ObjectRef
    handle: Handle = Handle()

    def encode(self) -> str:
        fields: dict[str, Any] = {
            "schema": CONTINUE_SCHEMA, "manifest_id": self.manifest_id, "vendor": self.vendor,
            "bucket": self.ref.bucket, "key": self.ref.key, "version_id": self.ref.version_id,
            "etag": self.ref.etag, "chain": self.handle.chain,
        }
        if self.handle.link is not None:
            fields["link"] = self.handle.link
        return json.dumps(fields, separators=(",", ":"), sort_keys=True)


class UnreadableMessage(Refused, ValueError):
    """A manifest queue message that is neither an S3 event nor a continuation."""


def parse_queue_message(body: str) -> list[ObjectRef] | Continuation | None:
    """Read a manifest queue message: object refs, a continuation, or None (nothing to do).

    None is returned for the ``s3:TestEvent`` and for events that create nothing.
    Raises ``UnreadableMessage`` with the reason for anything else.
    """
    try:
        data = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise UnreadableMessage(f"message body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UnreadableMessage("message body is not a JSON object")
    if data.get("Event") == "s3:TestEvent":
        return None
    if data.get("schema") == CONTINUE_SCHEMA:
        try:
            ref = ObjectRef(bucket=str(data["bucket"]), key=str(data["key"]),
                            version_id=data.get("version_id") or None, etag=data.get("etag") or None)
            chain, link = data.get("chain", 0), data.get("link")
        except KeyError as exc:
            raise UnreadableMessage(f"continuation message lacks field {exc}") from None
        if not isinstance(chain, int) or isinstance(chain, bool) or chain < 0:
            raise UnreadableMessage(f"continuation field chain must be a chain number (an integer >= 0), got {chain!r}")
        if link is not None and not (isinstance(link, str) and link):
            raise UnreadableMessage(f"continuation field link must be a non-empty string, got {link!r}")
        return Continuation(manifest_id=str(data["manifest_id"]), vendor=str(data["vendor"]), ref=ref,
                            handle=Handle(chain, link))
    records = data.get("Records")
    if not isinstance(records, list):
        raise UnreadableMessage("message is neither an S3 event notification nor a thingpress continuation")
    refs: list[ObjectRef] = []
    for record in records:
        try:
            if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith("ObjectCreated:"):
                logger.info("ignoring S3 event record", extra={"event_name": record.get("eventName")})
                continue
            obj = record["s3"]["object"]
            refs.append(ObjectRef(
                bucket=record["s3"]["bucket"]["name"],
                # S3 event keys are URL-encoded, spaces as '+'.
                key=unquote_plus(obj["key"]),
                version_id=obj.get("versionId") or None,
                etag=obj.get("eTag") or None,
                size=obj.get("size"),
            ))
        except (KeyError, TypeError, AttributeError) as exc:
            raise UnreadableMessage(f"S3 event record lacks field {exc}") from None
    return refs or None
