"""Generated manifests (``*.txt``): one standard-base64 PEM certificate per line.

Format decisions:

* Each non-blank line is the standard base64 (RFC 4648, with padding) of one PEM
  certificate. Blank lines (only whitespace) are ignored and are not entries.
* Positions count entries 1, 2, 3 ... in file order (blank lines take none); the
  reason names the file line (``"line 7: ..."``), which equals the position when
  the file has no blank lines.
* Thing name = the certificate's subject CN (``Device-0`` ...), validated against
  IoT's rules.
* A bad line (not base64, not a PEM certificate, no CN, longer than
  ``MAX_LINE_BYTES``) is refused on its own; the other lines are still imported.
* Expired / not-yet-valid certificates follow ``ParseOptions.expired``.
* ``read`` can start at a ``Cursor`` (the byte after an entry's line): the
  provider resumes a chunk there with a ranged GET; ``parse`` reads from the top.
* The whole file is refused (``ManifestError``) only when it is empty, holds no
  non-blank line, or its first entry is not even base64 text (e.g. a binary file
  or a JSON manifest handed to the wrong parser): such a file is not this format.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from thingpress import certs
from thingpress.cursor import Cursor
from thingpress.records import Entry, ManifestError, Refusal
from thingpress.vendors._stream import lines

if TYPE_CHECKING:
    from thingpress.vendors import ParseOptions

#: a base64 PEM of a large RSA certificate chain is far below this.
MAX_LINE_BYTES = 64 * 1024
_BASE64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def parse(stream: BinaryIO, options: ParseOptions) -> Iterator[Entry]:
    return (entry for entry, _ in read(stream, options))


def read(stream: BinaryIO, options: ParseOptions, start: Cursor | None = None) -> Iterator[tuple[Entry, Cursor]]:
    """``(entry, cursor after it)``; with ``start``, ``stream`` begins at ``start.offset`` of the file."""
    position = start.position if start else 0
    offset = start.offset if start else 0
    for number, raw, size in lines(stream, MAX_LINE_BYTES, start.line if start else 0):
        offset += size
        if raw is not None:
            raw = raw.strip()
            if not raw:
                continue
        position += 1
        label = f"line {number}"
        if raw is None:
            yield (Refusal(position, f"{label}: line is longer than {MAX_LINE_BYTES} bytes", kind="malformed"),
                   Cursor(position, offset, number))
            continue
        if position == 1 and not _BASE64.issuperset(raw):
            raise ManifestError(
                "not a generated manifest: expected one standard-base64 PEM certificate per line, "
                f"line {number} is not base64 text"
            )
        yield _entry(position, label, raw, options), Cursor(position, offset, number)
    if position == 0:
        raise ManifestError("generated manifest is empty: expected one standard-base64 PEM certificate per line")


def _entry(position: int, label: str, raw: bytes, options: ParseOptions) -> Entry:
    try:
        pem = binascii.a2b_base64(raw, strict_mode=True)
    except (binascii.Error, ValueError):
        return Refusal(position, f"{label}: not standard base64", kind="malformed")
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        return Refusal(position, f"{label}: base64 does not decode to a PEM certificate", kind="malformed")
    try:
        cert, der = certs.read_certificate(pem)
    except certs.CertificateError as exc:
        return Refusal(position, f"{label}: {exc.reason}", kind="malformed")
    name = certs.common_name(cert)
    if name is None:
        return Refusal(position, f"{label}: certificate subject has no CN (the thing name)", kind="thing_name",
                       fingerprint=certs.fingerprint(der))
    return certs.certificate_entry(position, f"{label} ({name[:64]})", name, cert, der,
                                   expired=options.expired, now=options.now)
