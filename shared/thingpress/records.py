"""What a vendor parser yields: one entry per manifest position.

A parser turns manifest bytes into a stream of entries, in manifest order:

* ``Certificate`` -- a certificate that passed every check and should be imported;
* ``Refusal`` -- an entry that is refused, with a human-readable reason.

A problem with the file as a whole (not JSON, corrupt archive, empty file, archive
bomb) raises ``ManifestError`` instead: nothing from such a file is imported.

Positions are 1-based and stable: the same file always yields the same positions,
so a position identifies an entry across retries and resumed invocations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from thingpress.errors import Refused


class ManifestError(Refused):
    """The file as a whole cannot be read as this vendor's manifest."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """An accepted entry: a device certificate and the thing it belongs to."""

    position: int
    thing_name: str
    certificate_pem: str
    #: lowercase hex SHA-256 of the certificate's DER: the AWS IoT certificate id.
    fingerprint: str
    not_before: datetime
    not_after: datetime
    #: vendor facts worth keeping in the audit trail (e.g. the Infineon chip id).
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused entry. ``reason`` says why, in one line, naming the entry."""

    position: int
    reason: str
    thing_name: str | None = None
    fingerprint: str | None = None
    #: a short machine-readable class of the refusal, for counting and reports:
    #: "malformed", "signature", "signer", "no_certificate", "expired",
    #: "not_yet_valid", "thing_name" or "" (unclassified).
    kind: str = ""


Entry = Certificate | Refusal
