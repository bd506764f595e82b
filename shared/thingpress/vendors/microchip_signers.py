"""The trusted Microchip manifest signers: their certificate files, their index by ``kid``, and
notices of their end of validity.

One reader of signer files (:func:`read_signer_file`) serves the stack at synth (it refuses any
other file), the provider at run time (``thingpress.provider.signers``: it ignores any other
object) and ``thingpress inspect``. :func:`index_signers` is what :mod:`thingpress.vendors.microchip`
verifies entries against: ``kid`` (base64url SubjectKeyIdentifier) and ``x5t#S256`` (base64url
SHA-256 of the DER) select the signer.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from thingpress import certs
from thingpress.errors import Refused

#: the only files taken as Microchip manifest signer certificates: by the stack at synth
#: (it refuses any other file) and by the provider at run time (it ignores any other object).
SIGNER_SUFFIXES = (".crt", ".pem", ".cer")


class SignerFileError(Refused):
    """A file that cannot serve as Microchip manifest signer certificates; the reason names it."""


@dataclass(frozen=True, slots=True)
class Signer:
    """A trusted manifest signer, indexed by ``kid``."""

    kid: str
    x5t: str
    public_key: ec.EllipticCurvePublicKey
    not_before: datetime
    not_after: datetime


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signer_kid(cert: x509.Certificate) -> str:
    """base64url of the certificate's SubjectKeyIdentifier (computed from the key when absent)."""
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        ski = x509.SubjectKeyIdentifier.from_public_key(cert.public_key())  # type: ignore[arg-type]
    return b64url(ski.digest)


def index_signers(signers: Iterable[x509.Certificate]) -> dict[str, list[Signer]]:
    """``kid -> signers`` for the trusted signer certificates (EC P-256 keys only)."""
    index: dict[str, list[Signer]] = {}
    for cert in signers:
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            continue
        signer = Signer(
            kid=signer_kid(cert),
            x5t=b64url(hashlib.sha256(certs.der_bytes(cert)).digest()),
            public_key=key,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )
        index.setdefault(signer.kid, []).append(signer)
    return index


#: how far ahead a trusted signer's end of validity is announced (``thingpress plan``, the stack's
#: settings check at synth).
SIGNER_NOTICE_DAYS = 90


def signer_name(cert: x509.Certificate) -> str:
    """A signer as people name it: its subject's common name (else the whole subject)."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def signer_notices(signers: Iterable[x509.Certificate], now: datetime,
                   within_days: int = SIGNER_NOTICE_DAYS) -> list[str]:
    """One line per trusted signer that has expired, or expires within ``within_days`` of ``now``.

    An expired signer still verifies what it signed while valid (validity is judged at each
    entry's ``provisioningTimestamp``), but a manifest signed after its end is refused entry by
    entry: the vendor's new signer certificate is then needed (``THINGPRESS_MICROCHIP_SIGNERS_DIR``).
    """
    notices = []
    for cert in sorted(signers, key=lambda c: c.not_valid_after_utc):
        ends = cert.not_valid_after_utc
        days = (ends - now).days
        if ends <= now:
            notices.append(f"trusted Microchip signer {signer_name(cert)!r} expired on {ends:%Y-%m-%d}: "
                           "entries it signed after that are refused")
        elif days < within_days:
            notices.append(f"trusted Microchip signer {signer_name(cert)!r} expires on {ends:%Y-%m-%d} "
                           f"(in {days} days): add its successor before manifests signed after that arrive")
    return notices


def is_signer_file(name: str) -> bool:
    """Whether a file (or S3 key) of this name is a signer certificate file (``SIGNER_SUFFIXES``)."""
    return name.lower().endswith(SIGNER_SUFFIXES)


def read_signer_file(name: str, data: bytes) -> tuple[x509.Certificate, ...]:
    """The certificates of one signer file: a PEM bundle or one DER certificate.

    The one reader of signer files (stack at synth, provider at run time, ``inspect``).
    Raises ``SignerFileError`` naming the file: content that is not certificates, or
    certificates under a name that is not a signer file name.
    """
    try:
        found = tuple(certs.load_certificates(data))
    except certs.CertificateError as exc:
        if b"-----BEGIN" in data:
            reason = exc.reason  # PEM, but a broken certificate
        elif data.strip():
            reason = f"holds no PEM certificate, nor is it one DER certificate ({exc.reason})"
        else:
            reason = "holds no PEM certificate (empty)"
        raise SignerFileError(f"{name}: {reason}") from None
    if not is_signer_file(name):
        raise SignerFileError(f"{name}: not taken as a Microchip signer certificate file: the name must end in "
                              f"{', '.join(SIGNER_SUFFIXES[:-1])} or {SIGNER_SUFFIXES[-1]}")
    return found


def signer_paths(directory: Path) -> list[Path]:
    """The files of a signers folder to read, sorted by name (hidden files such as ``.gitkeep`` skipped)."""
    return sorted(p for p in Path(directory).iterdir() if p.is_file() and not p.name.startswith("."))


def load_signers(directory: Path) -> tuple[x509.Certificate, ...]:
    """Every certificate of a signers folder (sorted by file name); ``SignerFileError`` for any other file."""
    found: list[x509.Certificate] = []
    for path in signer_paths(directory):
        found.extend(read_signer_file(path.name, path.read_bytes()))
    return tuple(found)
