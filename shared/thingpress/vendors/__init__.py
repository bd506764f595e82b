"""Vendor manifest parsers: bytes in, entries out, no AWS.

Each vendor module defines ``parse(stream, options) -> Iterator[Entry]``: it reads a
binary file object (an S3 streaming body or a local file), yields ``Certificate`` or
``Refusal`` per entry in manifest order, and raises ``ManifestError`` when the file as
a whole cannot be read as that vendor's manifest. ``VENDORS`` maps vendor name to its
``Vendor`` description; the provider function and ``thingpress inspect`` both go
through ``parse_manifest`` so they see exactly the same result.

A vendor whose format can be entered part-way also defines
``read(stream, options, start) -> Iterator[(Entry, Cursor)]`` (``Vendor.read``): each
entry with the cursor after it, starting at ``start`` (``thingpress.cursor``) when
given. The provider resumes such manifests from the cursor with a ranged GET. An
Infineon reel cannot be entered part-way: ``Vendor.stage`` extracts it once into a
staged object that ``Vendor.read_staged`` reads from a cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, BinaryIO

from cryptography import x509

from thingpress.cursor import Cursor
from thingpress.records import Entry, ManifestError


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Bounds against archive bombs (Infineon 7z reels)."""

    max_archive_bytes: int = 512 * 1024 * 1024
    max_entries: int = 200_000
    max_entry_bytes: int = 64 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024
    max_depth: int = 2

    @property
    def max_spooled_bytes(self) -> int:
        """The most the Infineon parser writes to /tmp at once: the outer archive, the inner
        archive and the extracted PEMs, each spooled at its own limit. The provider's ephemeral
        storage is sized from this (stacks/stack.py)."""
        return 2 * self.max_archive_bytes + self.max_total_bytes


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
    #: entries with the cursor after each, from a cursor; None: the format cannot be entered part-way.
    read: Callable[[BinaryIO, ParseOptions, Cursor | None], Iterator[tuple[Entry, Cursor]]] | None = None
    #: formats that are extracted once (Infineon reels): write the entries' files to a staged
    #: object (``stage``), which ``read_staged`` reads from a cursor.
    stage: Callable[[BinaryIO, ParseOptions, IO[bytes]], int] | None = None
    read_staged: Callable[[BinaryIO, ParseOptions, Cursor | None], Iterator[tuple[Entry, Cursor]]] | None = None


def vendor_for_key(key: str) -> str | None:
    """The vendor whose manifest suffix ``key`` (an S3 key or file name) ends with, or None."""
    lowered = key.lower()
    for name, vendor in VENDORS.items():
        if lowered.endswith(vendor.suffix):
            return name
    return None


def parse_manifest(vendor: str, stream: BinaryIO, options: ParseOptions | None = None) -> Iterator[Entry]:
    """Entries of ``stream`` read as ``vendor``'s manifest; raises ``ManifestError`` for the whole file.

    The provider functions and ``thingpress inspect`` both call this, then
    ``thingpress.manifest.scan`` for the rules common to every vendor.
    """
    try:
        parser = VENDORS[vendor].parse
    except KeyError:
        raise ManifestError(f"unknown vendor {vendor!r} (known: {', '.join(sorted(VENDORS))})") from None
    return parser(stream, options or ParseOptions())


# The vendor modules import ParseOptions from this package: import them last.
from thingpress.vendors import espressif, generated, infineon, microchip  # noqa: E402

#: vendor name -> description; the suffix routes an uploaded file to its vendor.
VENDORS: dict[str, Vendor] = {
    "microchip": Vendor("microchip", ".json", microchip.parse, microchip.read),
    "infineon": Vendor("infineon", ".7z", infineon.parse, stage=infineon.stage, read_staged=infineon.read_staged),
    "espressif": Vendor("espressif", ".csv", espressif.parse, espressif.read),
    "generated": Vendor("generated", ".txt", generated.parse, generated.read),
}
