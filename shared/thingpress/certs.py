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

import hashlib
import re
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from thingpress.records import Certificate, Entry, Refusal

THING_NAME_MAX = 128
_THING_NAME = re.compile(r"[a-zA-Z0-9:_-]+")
_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"

#: ``ParseOptions.expired`` values.
EXPIRED_REJECT = "reject"
EXPIRED_IMPORT = "import"


class CertificateError(ValueError):
    """Bytes that are not one readable X.509 certificate; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def load_certificate(data: bytes) -> x509.Certificate:
    """One certificate from PEM (first certificate block) or DER bytes."""
    if not data or not data.strip():
        raise CertificateError("certificate is empty")
    try:
        if _PEM_BEGIN in data:
            return x509.load_pem_x509_certificate(data)
        if data.lstrip().startswith(b"-----BEGIN"):
            raise CertificateError("PEM block is not a CERTIFICATE")
        return x509.load_der_x509_certificate(data)
    except CertificateError:
        raise
    except ValueError as exc:
        raise CertificateError(f"certificate cannot be read: {_short(exc)}") from None


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (or the one DER certificate)."""
    if _PEM_BEGIN not in data:
        return [load_certificate(data)]
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateError(f"certificate cannot be read: {_short(exc)}") from None


def der_bytes(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def fingerprint(cert: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the DER: the AWS IoT certificate id."""
    return hashlib.sha256(der_bytes(cert)).hexdigest()


def pem_text(cert: x509.Certificate) -> str:
    """Normalized PEM text (64-column base64, LF line ends, trailing newline)."""
    return cert.public_bytes(Encoding.PEM).decode("ascii")


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
    instant = at or datetime.now(UTC)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    not_after = cert.not_valid_after_utc
    not_before = cert.not_valid_before_utc
    if instant > not_after:
        return f"certificate expired on {not_after:%Y-%m-%d}"
    if instant < not_before:
        return f"certificate not valid before {not_before:%Y-%m-%d}"
    return None


def thing_name_problem(name: str | None) -> str | None:
    """Why ``name`` is not a valid AWS IoT thing name, or None when it is."""
    if name is None or name == "":
        return "thing name is empty"
    if len(name) > THING_NAME_MAX:
        return f"thing name is {len(name)} characters long, IoT allows at most {THING_NAME_MAX}"
    if not _THING_NAME.fullmatch(name):
        bad = sorted({c for c in name if not _THING_NAME.fullmatch(c)})
        shown = "".join(bad)[:10]
        return f"thing name {name[:64]!r} has characters IoT does not allow ({shown!r}; allowed: a-z A-Z 0-9 : _ -)"
    return None


def certificate_entry(
    position: int,
    label: str,
    thing_name: str | None,
    cert: x509.Certificate,
    *,
    expired: str = EXPIRED_REJECT,
    now: datetime | None = None,
    details: dict[str, str] | None = None,
) -> Entry:
    """A ``Certificate`` for a readable certificate, or a ``Refusal`` saying why not.

    ``label`` names the entry in the reason (e.g. ``"line 7"``,
    ``"row 3 (MAC 4BA2BB8764BD)"``). Checks, in order: the thing name against IoT's
    rules, then validity at ``now`` unless ``expired == "import"``.
    """
    fp = fingerprint(cert)
    problem = thing_name_problem(thing_name)
    if problem is not None:
        return Refusal(position, f"{label}: {problem}", thing_name or None, fp, kind="thing_name")
    if expired != EXPIRED_IMPORT:
        problem = validity_problem(cert, now)
        if problem is not None:
            kind = "expired" if "expired" in problem else "not_yet_valid"
            return Refusal(position, f"{label}: {problem}", thing_name, fp, kind=kind)
    return Certificate(
        position=position,
        thing_name=thing_name or "",
        certificate_pem=pem_text(cert),
        fingerprint=fp,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        details=dict(details or {}),
    )


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
