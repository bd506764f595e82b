"""The audit table's keys and items: the manifest id, every row's ``pk``/``sk``, the index and TTL
attribute names (the layout is ``thingpress.audit``'s), and items to and from DynamoDB's typed form."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

SUMMARY_SK = "#SUMMARY"
#: shard items of a summary: ``#SHARD#00`` ... (they sort before ``SUMMARY_SK``, after nothing else).
SHARD_PREFIX = "#SHARD#"
#: the sort keys of a manifest's certificate rows begin with it.
CERTIFICATE_PREFIX = "C#"
UNREADABLE_MANIFEST = "_unreadable"
#: the partition of manifest starts (``thingpress.audit``); sort key ``<started_at>#<manifest_id>``.
STARTS_PK = "S#STARTS"
INDEX_BY_THING = "by_thing"
INDEX_BY_STATE = "by_state"
TTL_ATTRIBUTE = "expires_at"
#: how every time in the table is written (``now_iso``): UTC, to the second.
STAMP = "%Y-%m-%dT%H:%M:%SZ"

_ser = TypeSerializer()
_de = TypeDeserializer()


def manifest_id(vendor: str, bucket: str, key: str, version: str) -> str:
    """The manifest id: vendor plus a digest of the exact S3 object version.

    Redelivery of the same S3 event gives the same id (resumable, idempotent); a
    re-upload is a new object version and so a new manifest. ``version`` is the S3
    version id (the stack enables versioning) or, for an unversioned bucket, the ETag.
    """
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version}".encode()).hexdigest()
    return f"{vendor}-{digest[:20]}"


def manifest_pk(mid: str) -> str:
    return f"M#{mid}"


def certificate_sk(fingerprint: str) -> str:
    return f"{CERTIFICATE_PREFIX}{fingerprint}"


def claims_pk(mid: str) -> str:
    return f"D#{mid}"


def shard_sk(shard: int) -> str:
    return f"{SHARD_PREFIX}{shard:02d}"


def refusal_sk(position: int) -> str:
    return f"R#{position:09d}"


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(STAMP)


def parse_stamp(stamp: str) -> datetime:
    """A time as ``now_iso`` wrote it."""
    return datetime.strptime(stamp, STAMP).replace(tzinfo=UTC)


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: _de.deserialize(v) for k, v in item.items()}
    # Numbers come back as Decimal; every number here is an integer.
    return {k: int(v) if type(v).__name__ == "Decimal" else v for k, v in out.items()}
