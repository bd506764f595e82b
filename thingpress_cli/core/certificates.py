"""Test certificates in the generated manifest format (``thingpress generate``, the demo, chaos, tests).

Builds a test root CA, an intermediate CA and N device certificates
(``CN=Device-0`` ... ``Device-<N-1>``, ECDSA P-256, signed by the intermediate),
and writes one standard-base64-encoded PEM per line: the format
``thingpress.vendors.generated`` reads.

Speed: signing is the cost, so by default ONE device key pair is shared by every
certificate (each certificate is still distinct: own CN, own serial). Device keys
are generated per device only when they are written (``--keys DIR``), because a
real device needs its own. 100,000 certificates take well under a minute.

Python API (tests, demo, benchmarks)::

    ca = make_ca()
    for device in device_certificates(ca, 1000, days=30):
        ...  # device.name, device.certificate, device.key (None unless keys=True)
    write_manifest(path, 1000)                    # -> GenerateResult
    manifest_bytes(1000, expired=True)            # an already-expired manifest, in memory
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_DAYS = 365
_SHA256 = hashes.SHA256()


@dataclass(frozen=True)
class CertificateAuthority:
    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Device:
    name: str
    certificate: x509.Certificate
    #: the device's own private key, or None when the shared key was used.
    key: ec.EllipticCurvePrivateKey | None = None

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class GenerateResult:
    path: Path
    count: int
    keys_dir: Path | None
    not_before: datetime
    not_after: datetime


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "thingpress test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(now: datetime | None = None, years: int = 10) -> CertificateAuthority:
    """A throw-away root CA and intermediate CA (P-256), valid from ten years ago (so
    backdated, already-expired device certificates fit inside) until ``years`` from now."""
    start = (now or datetime.now(UTC)) - timedelta(days=3650)
    end = (now or datetime.now(UTC)) + timedelta(days=365 * years)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("thingpress test root CA")
    root = (
        x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, _SHA256)
    )
    inter_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = (
        x509.CertificateBuilder().subject_name(_name("thingpress test intermediate CA")).issuer_name(root_name)
        .public_key(inter_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(inter_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, _SHA256)
    )
    return CertificateAuthority(root, root_key, intermediate, inter_key)


def validity(days: int = DEFAULT_DAYS, *, expired: bool = False,
             now: datetime | None = None) -> tuple[datetime, datetime]:
    """``(not_before, not_after)``: valid from an hour ago for ``days`` days, or, when
    ``expired``, ``days`` days long and ended yesterday."""
    instant = (now or datetime.now(UTC)).replace(microsecond=0)
    if expired:
        end = instant - timedelta(days=1)
        return end - timedelta(days=max(days, 1)), end
    start = instant - timedelta(hours=1)
    return start, start + timedelta(days=days)


def device_certificates(
    ca: CertificateAuthority,
    count: int,
    *,
    days: int = DEFAULT_DAYS,
    expired: bool = False,
    keys: bool = False,
    start: int = 0,
    prefix: str = "Device-",
    now: datetime | None = None,
) -> Iterator[Device]:
    """``count`` device certificates ``<prefix><start>`` ..., lazily (bounded memory).

    ``keys=False`` shares one key pair between all devices (fast, keys not returned);
    ``keys=True`` generates each device its own key and returns it.
    """
    not_before, not_after = validity(days, expired=expired, now=now)
    shared = None if keys else ec.generate_private_key(ec.SECP256R1())
    shared_public = shared.public_key() if shared is not None else None
    issuer = ca.intermediate.subject
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.intermediate_key.public_key())
    basic = x509.BasicConstraints(ca=False, path_length=None)
    for number in range(start, start + count):
        own = ec.generate_private_key(ec.SECP256R1()) if keys else None
        public = own.public_key() if own is not None else shared_public
        name = f"{prefix}{number}"
        cert = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(issuer)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(basic, critical=True)
            .add_extension(aki, critical=False)
            .sign(ca.intermediate_key, _SHA256)
        )
        yield Device(name, cert, own)


def manifest_line(pem: bytes) -> bytes:
    """One line of a generated manifest: the standard base64 of a PEM, with newline."""
    return base64.b64encode(pem) + b"\n"


def manifest_lines(devices: Iterable[Device]) -> Iterator[bytes]:
    for device in devices:
        yield manifest_line(device.pem)


def manifest_bytes(count: int, *, days: int = DEFAULT_DAYS, expired: bool = False,
                   ca: CertificateAuthority | None = None, prefix: str = "Device-") -> bytes:
    """A whole generated manifest in memory (tests)."""
    authority = ca or make_ca()
    return b"".join(manifest_lines(device_certificates(authority, count, days=days, expired=expired, prefix=prefix)))


def _write_key(directory: Path, device: Device) -> None:
    assert device.key is not None
    pem = device.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    path = directory / f"{device.name}.key.pem"
    path.write_bytes(pem)
    path.chmod(0o600)


def write_manifest(
    path: Path,
    count: int,
    *,
    keys_dir: Path | None = None,
    days: int = DEFAULT_DAYS,
    expired: bool = False,
    ca: CertificateAuthority | None = None,
    prefix: str = "Device-",
    progress=None,
) -> GenerateResult:
    """Write a ``count``-certificate generated manifest to ``path`` (and keys when asked).

    The CA certificates are written beside the manifest when ``keys_dir`` is given
    (``root-ca.pem``, ``intermediate-ca.pem`` in ``keys_dir``) so devices can be tested
    end to end. ``prefix`` starts every thing name (``Device-`` by default: ``Device-0`` ...).
    ``progress`` is called with the number written so far, every 1,000.
    """
    authority = ca or make_ca()
    path = Path(path)
    if keys_dir is not None:
        keys_dir = Path(keys_dir)
        keys_dir.mkdir(parents=True, exist_ok=True)
        (keys_dir / "root-ca.pem").write_bytes(authority.root.public_bytes(serialization.Encoding.PEM))
        (keys_dir / "intermediate-ca.pem").write_bytes(authority.intermediate.public_bytes(serialization.Encoding.PEM))
    not_before, not_after = validity(days, expired=expired)
    with path.open("wb") as out:
        for written, device in enumerate(
            device_certificates(authority, count, days=days, expired=expired, keys=keys_dir is not None,
                                prefix=prefix), start=1
        ):
            out.write(manifest_line(device.pem))
            if keys_dir is not None:
                _write_key(keys_dir, device)
            if progress is not None and (written % 1000 == 0 or written == count):
                progress(written)
    return GenerateResult(path, count, keys_dir, not_before, not_after)

