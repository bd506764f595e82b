"""py7zr for the Infineon parser: open, list and extract a 7z archive within bounds.

Every failure py7zr raises on a hostile or damaged archive becomes a ``ManifestError``
naming the archive (``what``); extracted members are written to one spool with an
offset index (``SpoolFactory``), each member and the whole bounded while writing.

Its own module so that importing ``thingpress.vendors`` does not import py7zr (with
pycryptodomex and cffi, the largest part of a provider's cold import): only extracting a
reel needs it, which ``thingpress.vendors.infineon`` does the first time it extracts one.
The other providers, the watchdog and the Infineon chunks that read a staged object
never import it (tests/benchmarks/bench_importer_import.py measures the cold imports).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import IO

import py7zr
import py7zr.exceptions
from py7zr.io import Py7zIO, WriterFactory

from thingpress.records import ManifestError


class Bound(Exception):
    """Raised from inside extraction when a bound is crossed (turned into ManifestError)."""


def open_archive(file: IO[bytes], what: str, max_extract: int, stack: ExitStack) -> py7zr.SevenZipFile:
    """``file`` opened as 7z; py7zr itself stops after ``max_extract`` decompressed bytes."""
    try:
        archive = py7zr.SevenZipFile(file, mode="r", max_extract_size=max_extract)
    except py7zr.PasswordRequired:
        raise ManifestError(f"{what} is encrypted (password required)") from None
    except Exception as exc:  # py7zr raises many types on hostile input; all mean "unreadable"
        raise ManifestError(f"{what} is not a readable 7z archive: {describe(exc)} (corrupt or truncated?)") from None
    return stack.enter_context(archive)


def members(archive: py7zr.SevenZipFile, what: str) -> list:
    try:
        return [info for info in archive.list() if not info.is_directory]
    except Exception as exc:  # see open_archive
        raise ManifestError(f"{what} cannot be listed: {describe(exc)} (corrupt or truncated?)") from None


def extract(archive: py7zr.SevenZipFile, targets: list[str] | None, factory: SpoolFactory, what: str) -> None:
    try:
        archive.extract(targets=targets, factory=factory)
    except Bound as bound:
        raise ManifestError(f"{what}: {bound}") from None
    except py7zr.exceptions.DecompressionBombError as exc:
        raise ManifestError(f"{what}: {exc}") from None
    except py7zr.PasswordRequired:
        raise ManifestError(f"{what} is encrypted (password required)") from None
    except Exception as exc:  # see open_archive
        raise ManifestError(f"{what} cannot be extracted: {describe(exc)} (corrupt or truncated?)") from None


class SpoolFactory(WriterFactory):
    """Writes every extracted member into one spool; ``index`` maps name -> (offset, length)."""

    def __init__(self, spool: IO[bytes], per_file: int, total: int):
        self.spool = spool
        self.per_file = per_file
        self.total = total
        self.written = 0
        self.index: dict[str, tuple[int, int]] = {}

    def create(self, filename: str) -> Py7zIO:
        return SpoolWriter(self, filename)


class SpoolWriter(Py7zIO):
    def __init__(self, factory: SpoolFactory, filename: str):
        self.factory = factory
        self.filename = filename
        self.start: int | None = None
        self.length = 0

    def write(self, s: bytes | bytearray) -> int:
        factory = self.factory
        if self.start is None:
            factory.spool.seek(0, 2)
            self.start = factory.spool.tell()
        self.length += len(s)
        factory.written += len(s)
        if self.length > factory.per_file:
            raise Bound(f"{self.filename} is larger than the limit of {factory.per_file} bytes")
        if factory.written > factory.total:
            raise Bound(f"content is larger than the limit of {factory.total} bytes")
        return factory.spool.write(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self.length

    def close(self) -> None:
        start = self.start if self.start is not None else 0
        self.factory.index[self.filename] = (start, self.length)


def describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
