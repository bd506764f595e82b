"""The import message: one SQS message per certificate, provider -> importer.

A small, versioned JSON document with the PEM as text (never a Python repr)::

    {
      "schema": "thingpress.import/1",
      "manifest_id": "generated-3f1c...",
      "vendor": "generated",
      "position": 17,
      "thing_name": "Device-16",
      "fingerprint": "<64 lowercase hex: SHA-256 of the DER>",
      "certificate_pem": "-----BEGIN CERTIFICATE-----\\n...",
      "queued_at": "2026-11-21T01:02:03Z",
      "attributes": {"device_id": "0123ab..."}
    }

``attributes`` is optional (absent when the entry gives none): the device facts
the manifest carries, already within IoT's rules (``thingpress.attributes``).

``queued_at`` is fixed when the provider first builds the message, so every
redelivery of the message carries the same value (it becomes a thing attribute
and must not make ``CreateThing`` non-idempotent).

``decode`` validates shape and types only and raises ``MessageError`` with the
reason; the importer checks the certificate itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from thingpress.attributes import problem as attribute_problem
from thingpress.errors import Refused
from thingpress.patterns import FINGERPRINT, MANIFEST_ID, TIMESTAMP

SCHEMA = "thingpress.import/1"
#: SQS's hard limit for one message, and for one SendMessageBatch call.
MAX_MESSAGE_BYTES = 256 * 1024



class MessageError(Refused, ValueError):
    """The message body is not a valid import message; ``reason`` says why."""


@dataclass(frozen=True, slots=True)
class ImportMessage:
    manifest_id: str
    vendor: str
    position: int
    thing_name: str
    fingerprint: str
    certificate_pem: str
    queued_at: str
    schema: str = SCHEMA
    attributes: dict[str, str] | None = None

    def encode(self) -> str:
        # A plain dict, not dataclasses.asdict (which deep-copies every field: ~10x slower).
        fields = {"schema": self.schema, "manifest_id": self.manifest_id, "vendor": self.vendor,
                  "position": self.position, "thing_name": self.thing_name, "fingerprint": self.fingerprint,
                  "certificate_pem": self.certificate_pem, "queued_at": self.queued_at}
        if self.attributes:
            fields["attributes"] = self.attributes
        return json.dumps(fields, separators=(",", ":"), sort_keys=True)


_FIELDS: dict[str, type] = {
    "schema": str,
    "manifest_id": str,
    "vendor": str,
    "position": int,
    "thing_name": str,
    "fingerprint": str,
    "certificate_pem": str,
    "queued_at": str,
}


#: fields a message may leave out.
_OPTIONAL = ("attributes",)


def decode(body: str | bytes) -> ImportMessage:
    """Parse and validate a message body; raise ``MessageError`` with the reason."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise MessageError(f"message body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageError("message body is not a JSON object")
    if data.get("schema") != SCHEMA:
        raise MessageError(f"unsupported message schema {data.get('schema')!r}, expected {SCHEMA!r}")
    missing = sorted(set(_FIELDS) - set(data))
    if missing:
        raise MessageError(f"message lacks field(s): {', '.join(missing)}")
    unknown = sorted(set(data) - set(_FIELDS) - set(_OPTIONAL))
    if unknown:
        raise MessageError(f"message has unknown field(s): {', '.join(unknown)}")
    for name, kind in _FIELDS.items():
        value = data[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise MessageError(f"message field {name!r} must be {kind.__name__}, got {type(value).__name__}")
    if not MANIFEST_ID.fullmatch(data["manifest_id"]):
        raise MessageError(f"message field 'manifest_id' is malformed: {data['manifest_id']!r}")
    if data["position"] < 1:
        raise MessageError(f"message field 'position' must be >= 1, got {data['position']}")
    if not FINGERPRINT.fullmatch(data["fingerprint"]):
        raise MessageError("message field 'fingerprint' must be 64 lowercase hex characters")
    if not TIMESTAMP.fullmatch(data["queued_at"]):
        raise MessageError(f"message field 'queued_at' must be UTC 'YYYY-MM-DDTHH:MM:SSZ', got {data['queued_at']!r}")
    attributes = data.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, dict):
            raise MessageError(f"message field 'attributes' must be an object, got {type(attributes).__name__}")
        for name, value in attributes.items():
            wrong = attribute_problem(name, value)
            if wrong:
                raise MessageError(f"message field 'attributes': {wrong}")
    return ImportMessage(**data)
