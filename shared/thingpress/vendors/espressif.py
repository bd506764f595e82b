"""Espressif manifests (``*.csv``): ``MAC,cn,cert`` with a quoted multi-line PEM.

Format decisions:

* UTF-8 (a byte-order mark is tolerated), any line ends. The first row must be the
  header ``MAC,cn,cert`` (surrounding spaces ignored, names case-sensitive);
  anything else is not an Espressif manifest and the whole file is refused
  (``ManifestError``), as is an empty file.
* Positions are data-row numbers: 1-based, header excluded, blank rows skipped
  (they take no number). Reasons name the row: ``"row 3 (MAC 4BA2BB8764BD): ..."``.
* Thing name = the MAC exactly as given (no case or separator normalisation, so
  the name matches what the device reports). It must look like a MAC (12 hex
  digits, optionally grouped by ``:`` or ``-``) and satisfy IoT's thing-name rules.
* ``cn`` must equal the certificate's subject CN: a mismatch means the row's
  columns do not belong together, so it is refused.
* A bad row (wrong field count, bad MAC, unreadable PEM, CN mismatch, expired...)
  is refused on its own; good rows are still imported. Undecodable bytes become
  U+FFFD and so fail those checks on their row only.
* ``read`` can start at a ``Cursor`` (the byte after an entry's row; the header
  was checked by the chunk that read the top): the provider resumes there with a
  ranged GET. Rows are cut at the same line ends as before (``\r``, ``\n``,
  ``\r\n``, outside quotes), counting the bytes of each line so every row's end
  offset is exact.
* A CSV structure error (e.g. a field larger than ``MAX_FIELD_BYTES`` characters,
  usually an unterminated quote) stops the file: ``ManifestError`` naming the row.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from thingpress import certs
from thingpress.cursor import Cursor
from thingpress.records import Entry, ManifestError, Refusal
from thingpress.vendors._stream import buffered

if TYPE_CHECKING:
    from thingpress.vendors import ParseOptions

HEADER = ["MAC", "cn", "cert"]
#: the csv module's field size limit (process-wide; left at its default).
MAX_FIELD_BYTES = csv.field_size_limit()
_MAC = re.compile(r"[0-9A-Fa-f]{12}|[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}")


class _Dialect(csv.excel):
    strict = False


_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def parse(stream: BinaryIO, options: ParseOptions) -> Iterator[Entry]:
    return (entry for entry, _ in read(stream, options))


def read(stream: BinaryIO, options: ParseOptions, start: Cursor | None = None) -> Iterator[tuple[Entry, Cursor]]:
    """``(entry, cursor after its row)``; with ``start``, ``stream`` begins at ``start.offset`` of the file."""
    feed = _Lines(stream, at_top=start is None)
    reader = csv.reader(feed, _Dialect())
    base_line = start.line if start else 0
    rows = _rows(reader, base_line)
    if start is None:
        header = next(rows, None)
        if header is None:
            raise ManifestError("espressif manifest is empty: expected a CSV with header MAC,cn,cert")
        if [h.strip() for h in header] != HEADER:
            raise ManifestError(
                f"not an espressif manifest: expected CSV header MAC,cn,cert, got {','.join(header)[:80]!r}"
            )
    position = start.position if start else 0
    base_offset = start.offset if start else 0
    for row in rows:
        if not row or all(not field.strip() for field in row):
            continue
        position += 1
        yield _entry(position, row, options), Cursor(position, base_offset + feed.consumed, base_line + reader.line_num)


class _Lines:
    """Decoded lines for ``csv.reader``, cut at ``\r``, ``\n`` and ``\r\n`` (kept, as with
    ``newline=""``); ``consumed`` is the bytes handed out so far. ``csv.reader`` pulls
    lines only as a row needs them, so after each row ``consumed`` is its end offset."""

    def __init__(self, stream: BinaryIO, *, at_top: bool):
        self._reader = buffered(stream)
        self._pending: list[bytes] = []
        self._at_top = at_top
        self.consumed = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if not self._pending:
            line = self._reader.readline()
            if not line:
                raise StopIteration
            if self._at_top:  # a byte-order mark is tolerated at the very start only
                self._at_top = False
                if line.startswith(_BOM):
                    self.consumed += len(_BOM)
                    line = line[len(_BOM):]
            if b"\r" in line and not (line.endswith(b"\r\n") and line.count(b"\r") == 1):
                self._pending = _LINE_END.findall(line)[::-1]
            else:
                self._pending = [line]
        piece = self._pending.pop()
        self.consumed += len(piece)
        return piece.decode("utf-8", errors="replace")


def _rows(reader, base_line: int) -> Iterator[list[str]]:
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ManifestError(
                f"espressif manifest is not valid CSV after line {base_line + reader.line_num}: {exc} "
                "(an unterminated quote?)"
            ) from None
        yield row


def _entry(position: int, row: list[str], options: ParseOptions) -> Entry:
    label = f"row {position}"
    if len(row) != 3:
        return Refusal(position, f"{label}: expected 3 fields (MAC,cn,cert), got {len(row)}", kind="malformed")
    mac, cn, pem = (field.strip() for field in row)
    label = f"{label} (MAC {certs.shown(mac[:40])})"
    problem = certs.thing_name_problem(mac)
    if problem is None and not _MAC.fullmatch(mac):
        problem = f"{mac!r} is not a MAC address (12 hex digits, optionally separated by ':' or '-')"
    if problem is not None:
        return Refusal(position, f"{label}: {problem}", mac or None, kind="thing_name")
    try:
        cert, der = certs.read_certificate(pem.encode("utf-8"))
    except certs.CertificateError as exc:
        return Refusal(position, f"{label}: {exc.reason}", mac, kind="malformed")
    subject_cn = certs.common_name(cert)
    if cn != subject_cn:
        return Refusal(position, f"{label}: cn {cn[:64]!r} differs from the certificate's CN {subject_cn!r}", mac,
                       certs.fingerprint(der), kind="malformed")
    return certs.certificate_entry(position, label, mac, cert, der, expired=options.expired, now=options.now,
                                   details={"cn": cn})
