"""Infineon OPTIGA Trust M reels (``*.7z``): an archive of archives, one PEM per chip.

Format decisions:

* The outer 7z holds ``<reel>_<guid>_E0E0_Certs.7z``, ``..._E0E1_Certs.7z``,
  ``..._E0E2_Certs.7z``, a password-protected ``..._keys.7z`` and ``README.txt``.
  Only the inner archive of the configured bundle (``ParseOptions.infineon_bundle``)
  is extracted; the keys archive is never opened, other members are ignored.
  Exactly one ``*_<bundle>_Certs.7z`` must exist, else the file is refused.
* Each inner archive holds ``<chipId>_<bundle>.pem``, one certificate per chip.
  Entries are the inner archive's files in sorted file-name order; positions are
  1-based in that order. A file that is not ``<chipId>_<bundle>.pem``, or that does
  not hold exactly one certificate, is refused on its own.
* Thing name = the chip id from the file name. It is stable across the three
  bundles (the certificate CN is not: it differs per bundle), so a device keeps
  its thing whichever bundle is imported. The CN, bundle and file name go into
  ``details``.
* Archive-bomb bounds (``ParseOptions.limits``), all checked on the declared
  sizes BEFORE anything is extracted, and again while extracting: outer file size
  and inner archive size (``max_archive_bytes``), member count (``max_entries``),
  size of one PEM (``max_entry_bytes``), total uncompressed size
  (``max_total_bytes``) and nesting (``max_depth``: outer = 1, certificate
  archive = 2; an archive inside it would be 3). Past a bound the whole file is
  refused with a ``ManifestError`` that names the bound.
* A corrupt, truncated or encrypted archive is refused as a whole with the reason.
* Staging (``stage``, ``read_staged``): the provider extracts the selected bundle
  once, into a staged object of one line per file (``<base64 file name> <base64
  file bytes>``, in entry order), and every chunk reads that from its cursor with
  a ranged GET instead of extracting the reel again. The same reel always stages
  to the same bytes, so a cursor stays valid if the staged object is made again.
* py7zr needs a seekable file: a non-seekable stream (an S3 body) is spooled to a
  ``SpooledTemporaryFile`` first, at most ``max_archive_bytes``. Extracted PEMs go
  to one spooled temporary file with an offset index, so memory holds the index,
  not the certificates.
* py7zr (``thingpress.vendors._sevenzip``) is imported when a reel is first
  extracted, not with this module: with pycryptodomex and cffi it was the largest
  part of every provider's cold import (``thingpress.vendors`` imports every
  vendor), and only that extraction uses it; the other providers, the watchdog and
  the chunks that read a staged object never do.
"""

from __future__ import annotations

import base64
import binascii
import re
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO, TYPE_CHECKING, BinaryIO

from thingpress import certs
from thingpress.cursor import Cursor
from thingpress.records import Entry, ManifestError, Refusal
from thingpress.vendors._stream import lines

if TYPE_CHECKING:
    from thingpress.vendors import ArchiveLimits, ParseOptions

BUNDLES = ("E0E0", "E0E1", "E0E2")
MAGIC = b"7z\xbc\xaf\x27\x1c"
_ARCHIVE_SUFFIXES = (".7z", ".zip", ".tar", ".gz", ".xz", ".bz2", ".rar")
_SPOOL_IN_MEMORY = 8 * 1024 * 1024
_CHIP_FILE = re.compile(r"(?:.*/)?([^/]+)_(E0E[0-2])\.pem", re.IGNORECASE)


def parse(stream: BinaryIO, options: ParseOptions) -> Iterator[Entry]:
    for position, (name, data) in enumerate(_files(stream, options), start=1):
        yield _entry(position, name, data, options.infineon_bundle, options)


def stage(stream: BinaryIO, options: ParseOptions, out: IO[bytes]) -> int:
    """Extract the selected bundle of the reel ``stream`` into ``out`` as staged lines; returns the file count."""
    count = 0
    for name, data in _files(stream, options):
        out.write(base64.b64encode(name.encode("utf-8", "surrogateescape")) + b" " + base64.b64encode(data) + b"\n")
        count += 1
    return count


def read_staged(stream: BinaryIO, options: ParseOptions,
                start: Cursor | None = None) -> Iterator[tuple[Entry, Cursor]]:
    """``(entry, cursor after it)`` from a staged object (``stage``), from ``start`` when given."""
    position = start.position if start else 0
    offset = start.offset if start else 0
    max_line = 2 * options.limits.max_entry_bytes + 4096
    for number, raw, size in lines(stream, max_line, start.line if start else 0):
        offset += size
        position += 1
        try:
            name_b64, data_b64 = (raw or b"").split(b" ")
            name = base64.b64decode(name_b64, validate=True).decode("utf-8", "surrogateescape")
            data = base64.b64decode(data_b64, validate=True)
        except (ValueError, binascii.Error):
            raise ManifestError(f"infineon staged object line {number} is damaged: stage the reel again") from None
        yield _entry(position, name, data, options.infineon_bundle, options), Cursor(position, offset, number)


def _files(stream: BinaryIO, options: ParseOptions) -> Iterator[tuple[str, bytes]]:
    """``(file name, bytes)`` of the selected bundle's files, in entry order."""
    bundle = options.infineon_bundle
    if bundle not in BUNDLES:
        raise ManifestError(f"unknown Infineon bundle {bundle!r} (expected one of {', '.join(BUNDLES)})")
    limits = options.limits
    with ExitStack() as stack:
        outer_file = _seekable(stream, limits, stack)
        inner_name, inner_file = _inner_archive(outer_file, bundle, limits, stack)
        names, index, spool = _extract_pems(inner_file, inner_name, limits, stack)
        for name in names:
            offset, length = index[name]
            spool.seek(offset)
            yield name, spool.read(length)


def _entry(position: int, name: str, data: bytes, bundle: str, options: ParseOptions) -> Entry:
    label = f"file {certs.shown(name[-80:])}"
    match = _CHIP_FILE.fullmatch(name)
    if match is None or match.group(2).upper() != bundle:
        return Refusal(position, f"{label}: not a chip certificate file (expected <chipId>_{bundle}.pem)",
                       kind="malformed")
    chip_id = match.group(1)
    label = f"chip {certs.shown(chip_id[:64])} ({certs.shown(name.rsplit('/', 1)[-1][-80:])})"
    try:
        found = certs.read_certificates(data)
    except certs.CertificateError as exc:
        return Refusal(position, f"{label}: {exc.reason}", chip_id, kind="malformed")
    if len(found) != 1:
        return Refusal(position, f"{label}: holds {len(found)} certificates, expected 1", chip_id, kind="malformed")
    cert, der = found[0]
    details = {"chip_id": chip_id, "bundle": bundle, "file": name, "cn": certs.common_name(cert) or ""}
    return certs.certificate_entry(position, label, chip_id, cert, der, expired=options.expired, now=options.now,
                                   details=details)


# -- the outer archive -------------------------------------------------------------------------


def _seekable(stream: BinaryIO, limits: ArchiveLimits, stack: ExitStack) -> IO[bytes]:
    """``stream`` itself when seekable, else a bounded spooled copy; checks size and magic."""
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable():
        start = stream.tell()
        size = stream.seek(0, 2) - start
        stream.seek(start)
        if size > limits.max_archive_bytes:
            raise ManifestError(
                f"infineon manifest is {size} bytes, more than the limit of {limits.max_archive_bytes}")
        file: IO[bytes] = stream
    else:
        spool = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY))
        size = 0
        while chunk := stream.read(1024 * 1024):
            size += len(chunk)
            if size > limits.max_archive_bytes:
                raise ManifestError(f"infineon manifest is larger than the limit of {limits.max_archive_bytes} bytes")
            spool.write(chunk)
        spool.seek(0)
        file = spool
    head = file.read(len(MAGIC))
    file.seek(-len(head), 1)
    if not head:
        raise ManifestError("infineon manifest is empty: expected a 7z archive (reel bundle)")
    if head != MAGIC:
        raise ManifestError("not an infineon manifest: expected a 7z archive (reel bundle), the file has no 7z signature")
    return file


def _inner_archive(outer_file: IO[bytes], bundle: str, limits: ArchiveLimits,
                   stack: ExitStack) -> tuple[str, IO[bytes]]:
    from thingpress.vendors import _sevenzip  # py7zr: imported by the first extraction (module docstring)

    what = "infineon manifest"
    outer = _sevenzip.open_archive(outer_file, what, limits.max_archive_bytes, stack)
    members = _sevenzip.members(outer, what)
    if len(members) > limits.max_entries:
        raise ManifestError(f"{what} has {len(members)} members, more than the limit of {limits.max_entries}")
    suffix = f"_{bundle}_Certs.7z".lower()
    chosen = [m for m in members if m.filename.lower().endswith(suffix)]
    if len(chosen) != 1:
        listing = ", ".join(sorted(m.filename for m in members))[:300] or "nothing"
        count = "no" if not chosen else f"{len(chosen)}"
        raise ManifestError(f"{what} holds {count} *_{bundle}_Certs.7z archive(s) (expected exactly one); "
                            f"it holds: {listing}")
    inner = chosen[0]
    if limits.max_depth < 2:
        raise ManifestError(f"{what}: certificate archive {inner.filename} is nested deeper than the limit "
                            f"of {limits.max_depth}")
    declared = inner.uncompressed or 0
    if declared > limits.max_archive_bytes:
        raise ManifestError(f"{what}: {inner.filename} declares {declared} bytes, more than the limit of "
                            f"{limits.max_archive_bytes}")
    spool = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY))
    factory = _sevenzip.SpoolFactory(spool, per_file=limits.max_archive_bytes, total=limits.max_archive_bytes)
    _sevenzip.extract(outer, [inner.filename], factory, what)
    spool.seek(0)
    return inner.filename, spool


# -- the certificate archive ---------------------------------------------------------------------


def _extract_pems(inner_file: IO[bytes], inner_name: str, limits: ArchiveLimits,
                  stack: ExitStack) -> tuple[list[str], dict[str, tuple[int, int]], IO[bytes]]:
    from thingpress.vendors import _sevenzip  # py7zr: imported by the first extraction (module docstring)

    what = f"infineon certificate archive {inner_name}"
    if inner_file.read(len(MAGIC)) != MAGIC:
        raise ManifestError(f"{what} is not a 7z archive")
    inner_file.seek(0)
    inner = _sevenzip.open_archive(inner_file, what, limits.max_total_bytes, stack)
    members = _sevenzip.members(inner, what)
    if len(members) > limits.max_entries:
        raise ManifestError(f"{what} has {len(members)} files, more than the limit of {limits.max_entries}")
    total = 0
    for member in members:
        if member.filename.lower().endswith(_ARCHIVE_SUFFIXES):
            raise ManifestError(f"{what}: {member.filename} is an archive nested deeper than the limit "
                                f"of {limits.max_depth}")
        size = member.uncompressed or 0
        if size > limits.max_entry_bytes:
            raise ManifestError(f"{what}: {member.filename} declares {size} bytes, more than the limit of "
                                f"{limits.max_entry_bytes} per file")
        total += size
    if total > limits.max_total_bytes:
        raise ManifestError(f"{what} declares {total} bytes in all, more than the limit of {limits.max_total_bytes}")
    names = sorted(m.filename for m in members)
    if len(set(names)) != len(names):
        raise ManifestError(f"{what} holds the same file name twice")
    spool = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY))
    factory = _sevenzip.SpoolFactory(spool, per_file=limits.max_entry_bytes, total=limits.max_total_bytes)
    _sevenzip.extract(inner, None, factory, what)
    missing = [n for n in names if n not in factory.index]
    if missing:
        raise ManifestError(f"{what}: {len(missing)} listed file(s) were not extracted, e.g. {missing[0]}")
    return names, factory.index, spool
