"""Vendor manifest parsers: bytes in, entries out, no AWS.

Each vendor module defines ``parse(stream, options) -> Iterator[Entry]``: it reads a
binary file object (an S3 streaming body or a local file), yields ``Certificate`` or
``Refusal`` per entry in manifest order, and raises ``ManifestError`` when the file as
a whole cannot be read as that vendor's manifest. ``VENDORS`` maps vendor name to its
``Vendor`` description; the provider function and ``thingpress inspect`` both go
through ``parse_manifest`` so they see exactly the same result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

from cryptography import x509

from thingpress.records import Entry


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Bounds against archive bombs (Infineon 7z reels)."""

    max_archive_bytes: int = 512 * 1024 * 1024
    max_entries: int = 200_000
    max_entry_bytes: int = 64 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024
    max_depth: int = 2


@dataclass(frozen=True, slots=True)
class ParseOptions:
    #: "reject" (default) or "import" for expired / not-yet-valid certificates.
    expired: str = "reject"
    #: the instant certificate validity is judged at; None means now.
    now: datetime | None = None
    infineon_bundle: str = "E0E0"
    #: trusted Microchip manifest signer certificates.
    microchip_signers: tuple[x509.Certificate, ...] = ()
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)


@dataclass(frozen=True, slots=True)
class Vendor:
    name: str
    #: file name suffix, lower case, with the dot.
    suffix: str
    parse: Callable[[BinaryIO, ParseOptions], Iterator[Entry]]
