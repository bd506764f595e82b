"""X.509 helpers shared by every vendor parser and the importer.

* ``load_certificate`` reads one certificate, PEM or DER, with ``cryptography``.
* ``fingerprint`` is the lowercase hex SHA-256 of the DER: exactly the AWS IoT
  certificate id, so the certificate ARN can be derived without a Describe call.
* ``validity_problem`` judges a certificate at an instant: ``"certificate expired
  on 2025-09-13"`` / ``"certificate not valid before 2031-01-01"`` or ``None``.
* ``thing_name_problem`` checks a thing name against IoT's rules
  (``[a-zA-Z0-9:_-]+``, at most 128 characters) and says what is wrong.
* ``pem_text`` is the normalized PEM text sent to IoT (``-----BEGIN ...`` lines,
  64-column base64, trailing newline), whatever the input encoding was.
* ``certificate_entry`` is the one place where a parsed certificate becomes a
  ``Certificate`` or a ``Refusal``: every vendor applies the same rules, in the same
  order (thing name, then validity), with reasons that name the entry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from thingpress.errors import Refused
from thingpress.patterns import THING_NAME, THING_NAME_CHAR, THING_NAME_MAX
from thingpress.records import Certificate, Entry, Refusal

_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
_PEM_END = b"-----END CERTIFICATE-----"

#: ``ParseOptions.expired`` values.
EXPIRED_REJECT = "reject"
EXPIRED_IMPORT = "import"


class CertificateError(Refused, ValueError):
    """Bytes that are not one readable X.509 certificate; ``reason`` says why."""


def load_certificate(data: bytes) -> x509.Certificate:
    """One certificate from PEM (first certificate block) or DER bytes."""
    return read_certificate(data)[0]


def read_certificate(data: bytes) -> tuple[x509.Certificate, bytes]:
    """``(certificate, DER)`` from PEM (the first CERTIFICATE block) or DER bytes.

    The PEM body is base64-decoded here and the DER parsed once: the DER then serves
    the fingerprint and the normalized PEM without re-encoding the certificate.
    """
    if not data or not data.strip():
        raise CertificateError("certificate is empty")
    if _PEM_BEGIN in data:
        der = _pem_blocks(data)[0]
    elif data.lstrip().startswith(b"-----BEGIN"):
        raise CertificateError("PEM block is not a CERTIFICATE")
    else:
        der = data
    return load_der(der), der


def read_certificates(data: bytes) -> list[tuple[x509.Certificate, bytes]]:
    """Every ``(certificate, DER)`` of a PEM bundle (or the one DER certificate)."""
    if _PEM_BEGIN not in data:
        return [read_certificate(data)]
    return [(load_der(der), der) for der in _pem_blocks(data)]


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (or the one DER certificate)."""
    return [cert for cert, _ in read_certificates(data)]


def _pem_blocks(data: bytes) -> list[bytes]:
    blocks: list[bytes] = []
    start = data.find(_PEM_BEGIN)
    while start >= 0:
        body_start = start + len(_PEM_BEGIN)
        end = data.find(_PEM_END, body_start)
        if end < 0:
            raise CertificateError("PEM certificate has no END CERTIFICATE line")
        try:
            blocks.append(base64.b64decode(b"".join(data[body_start:end].split()), validate=True))
        except (binascii.Error, ValueError):
            raise CertificateError("PEM certificate body is not base64") from None
        start = data.find(_PEM_BEGIN, end)
    return blocks


def load_der(der: bytes) -> x509.Certificate:
    """One certificate from exactly its DER bytes (with a positive serial number: RFC 5280, 4.1.2.2)."""
    if not der:
        raise CertificateError("certificate is empty")
    try:
        cert = x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is not a ValueError
        raise CertificateError(f"certificate cannot be read: {_short(exc)}") from None
    # cryptography reads a zero or negative serial number with a CryptographyDeprecationWarning today and
    # refuses it in a later release (found by the parser fuzz): refused here already.
    if cert.serial_number <= 0:
        raise CertificateError("certificate serial number is not positive (RFC 5280 requires a positive one)")
    return cert


def der_bytes(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def fingerprint(cert: x509.Certificate | bytes) -> str:
    """Lowercase hex SHA-256 of the DER (given, or of ``cert``): the AWS IoT certificate id."""
    der = cert if isinstance(cert, bytes) else der_bytes(cert)
    return hashlib.sha256(der).hexdigest()


def pem_text(cert: x509.Certificate | bytes) -> str:
    """Normalized PEM text (64-column base64, LF line ends, trailing newline) of a certificate or its DER."""
    der = cert if isinstance(cert, bytes) else der_bytes(cert)
    body = base64.b64encode(der).decode("ascii")
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


def common_name(cert: x509.Certificate) -> str | None:
    """The subject's first CN as text, or None when the subject has none."""
    try:
        attributes = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    if not attributes:
        return None
    value = attributes[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def validity_problem(cert: x509.Certificate, at: datetime | None = None) -> str | None:
    """Why ``cert`` is not valid at ``at`` (default: now), or None when it is."""
    return _validity(cert.not_valid_before_utc, cert.not_valid_after_utc, at)


def _validity(not_before: datetime, not_after: datetime, at: datetime | None) -> str | None:
    instant = at or datetime.now(UTC)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    if instant > not_after:
        return f"certificate expired on {not_after:%Y-%m-%d}"
    if instant < not_before:
        return f"certificate not valid before {not_before:%Y-%m-%d}"
    return None


def shown(value: str) -> str:
    """``value`` for a one-line reason: as is when printable, else quoted with escapes (``'0\\n0'``)."""
    return value if value.isprintable() else repr(value)


def thing_name_problem(name: str | None) -> str | None:
    """Why ``name`` is not a valid AWS IoT thing name, or None when it is."""
    if name is None or name == "":
        return "thing name is empty"
    if len(name) > THING_NAME_MAX:
        return f"thing name is {len(name)} characters long, IoT allows at most {THING_NAME_MAX}"
    if not THING_NAME.fullmatch(name):
        bad = sorted({c for c in name if not THING_NAME_CHAR.fullmatch(c)})
        shown = "".join(bad)[:10]
        return f"thing name {name[:64]!r} has characters IoT does not allow ({shown!r}; allowed: a-z A-Z 0-9 : _ -)"
    return None


def certificate_entry(
    position: int,
    label: str,
    thing_name: str | None,
    cert: x509.Certificate,
    der: bytes | None = None,
    *,
    expired: str = EXPIRED_REJECT,
    now: datetime | None = None,
    details: dict[str, str] | None = None,
) -> Entry:
    """A ``Certificate`` for a readable certificate, or a ``Refusal`` saying why not.

    ``label`` names the entry in the reason (e.g. ``"line 7"``,
    ``"row 3 (MAC 4BA2BB8764BD)"``). Checks, in order: the thing name against IoT's
    rules, then validity at ``now`` unless ``expired == "import"``. ``der`` is the
    certificate's DER when the caller has it (saves re-encoding the certificate).
    """
    if der is None:
        der = der_bytes(cert)
    fp = fingerprint(der)
    problem = thing_name_problem(thing_name)
    if problem is not None:
        return Refusal(position, f"{label}: {problem}", thing_name or None, fp, kind="thing_name")
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    if expired != EXPIRED_IMPORT:
        problem = _validity(not_before, not_after, now)
        if problem is not None:
            kind = "expired" if "expired" in problem else "not_yet_valid"
            return Refusal(position, f"{label}: {problem}", thing_name, fp, kind=kind)
    return Certificate(
        position=position,
        thing_name=thing_name or "",
        certificate_pem=pem_text(der),
        fingerprint=fp,
        not_before=not_before,
        not_after=not_after,
        details=dict(details or {}),
    )


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
