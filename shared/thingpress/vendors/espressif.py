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
* A CSV structure error (e.g. a field larger than ``MAX_FIELD_BYTES`` characters,
  usually an unterminated quote) stops the file: ``ManifestError`` naming the row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from thingpress import certs
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


def parse(stream: BinaryIO, options: ParseOptions) -> Iterator[Entry]:
    text = io.TextIOWrapper(buffered(stream), encoding="utf-8-sig", errors="replace", newline="")
    rows = _rows(csv.reader(text, _Dialect()))
    header = next(rows, None)
    if header is None:
        raise ManifestError("espressif manifest is empty: expected a CSV with header MAC,cn,cert")
    if [h.strip() for h in header] != HEADER:
        raise ManifestError(
            f"not an espressif manifest: expected CSV header MAC,cn,cert, got {','.join(header)[:80]!r}"
        )
    position = 0
    for row in rows:
        if not row or all(not field.strip() for field in row):
            continue
        position += 1
        yield _entry(position, row, options)


def _rows(reader) -> Iterator[list[str]]:
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ManifestError(
                f"espressif manifest is not valid CSV after line {reader.line_num}: {exc} "
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
