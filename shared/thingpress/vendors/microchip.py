"""Microchip Trust&GO / TrustFLEX manifests (``*.json``): signed entries, one per device.

Format decisions:

* The file is a UTF-8 JSON array; each element is a JWS in flattened JSON
  serialization: ``protected``, ``header``, ``payload``, ``signature``, all
  base64url without padding. The array is read element by element
  (``json.JSONDecoder.raw_decode`` over a buffered text stream), so a manifest of
  any length needs memory for one element only. Positions are 1-based array indexes.
  ``read`` yields the byte offset just after each element and can start there
  (``Cursor``): the provider resumes a chunk at the next element with a ranged GET,
  without re-reading (or re-verifying) the elements before it.
* Signature: ES256 only, checked with ``cryptography`` (no python-jose). The raw
  64-byte ``r || s`` is converted to DER (``encode_dss_signature``) and verified over
  the ASCII bytes ``protected + "." + payload``.
* Signer selection: ``kid`` must be the base64url SubjectKeyIdentifier of one of the
  trusted signer certificates (``ParseOptions.microchip_signers``) AND ``x5t#S256``
  must be the base64url SHA-256 of that certificate's DER. Signer public keys are
  indexed once per parse.
* Signer validity is judged at the entry's signed ``provisioningTimestamp`` (when
  Microchip signed it), not now: signer 4 expired on 2026-07-18, yet manifests it
  signed while valid stay verifiable. An entry whose timestamp lies outside its
  signer's validity, or that has no timestamp, is refused.
* Thing name = ``uniqueId`` of the signed payload. The unprotected ``header``
  ``uniqueId`` must agree with it (else the entry is refused: the unsigned part was
  altered).
* Certificate = ``publicKeySet.keys[kid == "0"].x5c[0]`` (standard base64 DER); its
  public key must equal the signed key 0 (``x``, ``y``). The chain (``x5c[1]``) is
  not checked: the signature already ties the certificate to Microchip.
* An entry that verifies but carries no certificate is refused with kind
  ``no_certificate`` ("signed entry carries no device certificate ..."); a manifest
  where every entry is like that (sample ``ECC608-TMNGTLSS-B.json``) is reported
  as such by ``thingpress.manifest.Tally.note``.
* Refusals name the entry: ``"entry 3 (uniqueId 0123...): <reason>"``.
* The whole file is refused (``ManifestError``) when empty, not a JSON array
  (e.g. a CSV), not UTF-8, broken JSON (the error names the entry; entries before
  it were already yielded), or when no trusted signer is configured.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from thingpress import certs
from thingpress.cursor import Cursor
from thingpress.errors import Refused
from thingpress.records import Entry, ManifestError, Refusal
from thingpress.vendors._stream import buffered
from thingpress.vendors.microchip_signers import Signer, index_signers

if TYPE_CHECKING:
    from thingpress.vendors import ParseOptions

#: an element larger than this is not a Microchip entry (real ones are ~4 KiB).
MAX_ENTRY_CHARS = 1024 * 1024
_CHUNK = 64 * 1024
_ECDSA = ec.ECDSA(hashes.SHA256())
def _unb64url(text: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not a string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse(stream: BinaryIO, options: ParseOptions) -> Iterator[Entry]:
    return (entry for entry, _ in read(stream, options))


def read(stream: BinaryIO, options: ParseOptions, start: Cursor | None = None) -> Iterator[tuple[Entry, Cursor]]:
    """``(entry, cursor after its element)``; with ``start``, ``stream`` begins at ``start.offset``
    of the file, just after element ``start.position``."""
    index = index_signers(options.microchip_signers)
    base = start.offset if start else 0
    for position, element, end in _elements(stream, start.position if start else None):
        if not index:
            raise ManifestError(
                "microchip manifest cannot be verified: no trusted Microchip manifest signer certificate is configured"
            )
        yield _entry(position, element, index, options), Cursor(position, base + end)


# -- one entry -----------------------------------------------------------------------------


class _Refused(Refused):
    """An entry refused; ``kind`` classifies it (``records.Refusal.kind``)."""

    def __init__(self, reason: str, kind: str):
        super().__init__(reason)
        self.kind = kind


def _entry(position: int, element: Any, index: dict[str, list[Signer]], options: ParseOptions) -> Entry:
    label = f"entry {position}"
    name: str | None = None
    if isinstance(element, dict) and isinstance(element.get("header"), dict):
        given = element["header"].get("uniqueId")
        if isinstance(given, str):
            name = given
            label = f"entry {position} (uniqueId {certs.shown(given[:64])})"
    try:
        return _verified_entry(position, label, element, index, options)
    except _Refused as refused:
        return Refusal(position, f"{label}: {refused.reason}", name, kind=refused.kind)


def _verified_entry(position: int, label: str, element: Any, index: dict[str, list[Signer]],
                    options: ParseOptions) -> Entry:
    if not isinstance(element, dict) or not all(
        isinstance(element.get(k), str) for k in ("protected", "payload", "signature")
    ):
        raise _Refused("not a signed entry (expected a JSON object with string protected, payload, signature)",
                       "malformed")
    protected_b64: str = element["protected"]
    payload_b64: str = element["payload"]
    protected = _json_part(protected_b64, "protected header")
    alg = protected.get("alg")
    if alg != "ES256":
        raise _Refused(f"unsupported signature algorithm {alg!r} (expected ES256)", "signature")
    kid = protected.get("kid")
    x5t = protected.get("x5t#S256")
    candidates = index.get(kid) if isinstance(kid, str) else None
    if not candidates:
        raise _Refused(f"signed by unknown signer kid {kid!r} (not one of the trusted Microchip signers)", "signer")
    signer = next((s for s in candidates if s.x5t == x5t), None)
    if signer is None:
        raise _Refused(f"x5t#S256 {x5t!r} does not match the trusted signer with kid {kid!r}", "signer")
    try:
        raw = _unb64url(element["signature"])
    except (ValueError, binascii.Error):
        raise _Refused("signature is not base64url", "signature") from None
    if len(raw) != 64:
        raise _Refused(f"signature is not a 64-byte ES256 signature (got {len(raw)} bytes)", "signature")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        signer.public_key.verify(der, f"{protected_b64}.{payload_b64}".encode("ascii"), _ECDSA)
    except (InvalidSignature, UnicodeEncodeError):
        raise _Refused(f"signature does not verify against signer kid {kid!r}", "signature") from None

    payload = _json_part(payload_b64, "signed payload")
    unique_id = payload.get("uniqueId")
    if not isinstance(unique_id, str) or not unique_id:
        raise _Refused("signed payload has no uniqueId (the thing name)", "malformed")
    header = element.get("header")
    header_id = header.get("uniqueId") if isinstance(header, dict) else None
    if header_id is not None and header_id != unique_id:
        raise _Refused(f"unprotected header uniqueId {header_id!r} differs from the signed uniqueId {unique_id!r}",
                       "signature")
    signed_at = _timestamp(payload.get("provisioningTimestamp"))
    if not signer.not_before <= signed_at <= signer.not_after:
        raise _Refused(
            f"signed on {signed_at:%Y-%m-%d}, outside the validity of signer kid {kid!r} "
            f"({signer.not_before:%Y-%m-%d} to {signer.not_after:%Y-%m-%d})",
            "signer",
        )
    cert, der = _device_certificate(payload)
    details = {"uniqueId": unique_id, "signer_kid": kid, "provisioningTimestamp": str(payload["provisioningTimestamp"])}
    if isinstance(payload.get("partNumber"), str):
        details["partNumber"] = payload["partNumber"]
    return certs.certificate_entry(position, f"entry {position} (uniqueId {unique_id[:64]})", unique_id, cert, der,
                                   expired=options.expired, now=options.now, details=details)


def _json_part(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_unb64url(text))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise _Refused(f"{what} is not base64url JSON", "malformed") from None
    if not isinstance(value, dict):
        raise _Refused(f"{what} is not a JSON object", "malformed")
    return value


def _timestamp(value: Any) -> datetime:
    try:
        stamp = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        stamp = None
    if stamp is None:
        raise _Refused(
            f"signed payload has no valid provisioningTimestamp (got {value!r}); it is needed to judge the signer",
            "malformed",
        )
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _device_certificate(payload: dict[str, Any]) -> tuple[x509.Certificate, bytes]:
    key_set = payload.get("publicKeySet")
    if key_set is None:
        raise _Refused("signed entry carries no device certificate (publicKeySet absent)", "no_certificate")
    keys = key_set.get("keys") if isinstance(key_set, dict) else None
    if not isinstance(keys, list):
        keys = []
    key0 = next((k for k in keys if isinstance(k, dict) and k.get("kid") == "0"), None)
    chain = key0.get("x5c") if key0 else None
    if not isinstance(chain, list) or not chain:
        raise _Refused("signed entry carries no device certificate (publicKeySet has no key \"0\" with x5c)",
                       "no_certificate")
    try:
        der = base64.b64decode(chain[0], validate=True) if isinstance(chain[0], str) else b""
        cert = certs.load_der(der)
    except (binascii.Error, ValueError) as exc:
        reason = exc.reason if isinstance(exc, certs.CertificateError) else "not standard base64"
        raise _Refused(f"device certificate x5c[0] cannot be read: {reason}", "malformed") from None
    _check_key(cert, key0)
    return cert, der


def _check_key(cert: x509.Certificate, key0: dict[str, Any]) -> None:
    """The certificate's public key must be the signed JWK key 0 (when it gives x and y)."""
    if not isinstance(key0.get("x"), str) or not isinstance(key0.get("y"), str):
        return
    try:
        key = cert.public_key()
    except ValueError:
        raise _Refused("device certificate x5c[0] has an unreadable public key", "malformed") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise _Refused("device certificate x5c[0] does not hold the signed EC key 0", "malformed")
    numbers = key.public_numbers()
    size = (key.curve.key_size + 7) // 8
    try:
        same = (_unb64url(key0["x"]) == numbers.x.to_bytes(size, "big")
                and _unb64url(key0["y"]) == numbers.y.to_bytes(size, "big"))
    except (ValueError, binascii.Error):
        same = False
    if not same:
        raise _Refused("device certificate x5c[0] public key differs from the signed key 0 (x, y)", "malformed")


# -- streaming the JSON array ----------------------------------------------------------------


def _elements(stream: BinaryIO, after: int | None = None) -> Iterator[tuple[int, Any, int]]:
    """``(position, element, end)`` for each element of the top-level JSON array, one at a time;
    ``end`` is the byte offset (in ``stream``) just after the element.

    ``after``: ``stream`` starts just after element ``after`` (a resumed chunk), not at the top.
    """
    reader = _Chars(stream)
    resumed = after is not None
    position = after or 0
    if not resumed:
        first = reader.next_significant()
        if first is None:
            raise ManifestError("microchip manifest is empty: expected a JSON array of signed entries")
        if first != "[":
            raise ManifestError(
                "not a microchip manifest: expected a JSON array of signed entries (flattened JWS), "
                f"found {reader.excerpt()!r} at the start"
            )
        reader.advance(1)
        if reader.next_significant() == "]":
            reader.advance(1)
            reader.expect_end()
            return
    while True:
        if not resumed:
            position += 1
            element = reader.decode(position)
            yield position, element, reader.offset()
        resumed = False
        separator = reader.next_significant()
        if separator == ",":
            reader.advance(1)
            continue
        if separator == "]":
            reader.advance(1)
            reader.expect_end()
            return
        found = "end of file" if separator is None else repr(reader.excerpt())
        raise ManifestError(f"microchip manifest is not valid JSON after entry {position}: "
                            f"expected ',' or ']', found {found} (truncated file?)")


class _Chars:
    """A buffered text window over the stream for incremental ``raw_decode``."""

    def __init__(self, stream: BinaryIO):
        self._stream = buffered(stream)
        self._decoder = json.JSONDecoder()
        self._incremental = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self._buf = ""
        self._i = 0
        self._eof = False
        self._started = False
        #: byte offsets: ``_mark_bytes`` is where character ``_mark`` of ``_buf`` starts.
        self._mark = 0
        self._mark_bytes = 0

    def offset(self) -> int:
        """The byte offset (in the stream) of the current character; each character is
        encoded once to count its bytes (the text was strict UTF-8, so the count is exact)."""
        self._mark_bytes += len(self._buf[self._mark:self._i].encode("utf-8"))
        self._mark = self._i
        return self._mark_bytes

    def _fill(self) -> bool:
        if self._eof:
            return False
        data = self._stream.read(_CHUNK)
        if not self._started:
            self._started = True
            if data.startswith(codecs.BOM_UTF8):  # dropped by the decoder: count its bytes
                self._mark_bytes += len(codecs.BOM_UTF8)
        try:
            text = self._incremental.decode(data or b"", final=not data)
        except UnicodeDecodeError as exc:
            raise ManifestError(f"microchip manifest is not UTF-8 text: {exc.reason}") from None
        if not data:
            self._eof = True
        if self._i > _CHUNK:
            self.offset()
            self._buf = self._buf[self._i:]
            self._i = 0
            self._mark = 0
        self._buf += text
        return True

    def next_significant(self) -> str | None:
        while True:
            while self._i < len(self._buf) and self._buf[self._i] in " \t\r\n":
                self._i += 1
            if self._i < len(self._buf):
                return self._buf[self._i]
            if not self._fill():
                return None

    def advance(self, n: int) -> None:
        self._i += n

    def excerpt(self) -> str:
        return self._buf[self._i:self._i + 20]

    def expect_end(self) -> None:
        if self.next_significant() is not None:
            raise ManifestError(f"microchip manifest has data after the JSON array: {self.excerpt()!r}")

    def decode(self, position: int) -> Any:
        if self.next_significant() is None:
            raise ManifestError(f"microchip manifest ends where entry {position} should be (truncated file?)")
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._i)
            except json.JSONDecodeError as exc:
                if self._eof or len(self._buf) - self._i > MAX_ENTRY_CHARS:
                    raise self._error(position, exc.msg) from None
                self._fill()
                continue
            except RecursionError:
                raise self._error(position, "nested too deeply") from None
            if end == len(self._buf) and not self._eof:
                self._fill()  # a value that touches the buffer end may continue (e.g. a number)
                continue
            self._i = end
            return value

    def _error(self, position: int, message: str) -> ManifestError:
        if len(self._buf) - self._i > MAX_ENTRY_CHARS:
            return ManifestError(f"microchip manifest entry {position} is larger than {MAX_ENTRY_CHARS} characters")
        where = "truncated file?" if self._eof else "broken JSON"
        return ManifestError(f"microchip manifest is not valid JSON at entry {position}: {message} ({where})")
