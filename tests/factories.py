"""Manifest builders in all four vendor formats, from generated certificates.

Tests import it as ``factories`` (``tests/`` is on ``sys.path``, see ``aws_fixtures``).
Every builder returns the manifest as ``bytes``; nothing touches the disk or AWS.

Certificates::

    devices(n, expired=False, prefix="Device-", start=0) -> list[Device]
        # Device.name (the CN), .certificate (x509), .pem (bytes); one shared test CA,
        # one shared device key (fast). Cached per arguments, so repeated calls are free.
    certificate_pem(device) -> str     # normalized PEM text, as the parsers emit it
    fingerprint(device) -> str         # lowercase hex SHA-256 of the DER

Generated (.txt)::

    generated_manifest(devs) -> bytes                      # one base64 PEM per line

Espressif (.csv)::

    mac(i) -> "0000000000AB"-style MAC for device i
    espressif_rows(devs) -> list[(MAC, cn, pem_text)]
    espressif_manifest(rows, header="MAC,cn,cert") -> bytes  # rows may be any list of fields

Microchip (.json)::

    signer = microchip_signer(not_before=..., not_after=...)  # ES256 test signer (key + cert)
    signer.certificate / signer.kid / signer.x5t
    microchip_entry(signer, unique_id, device=None, provisioned_at=..., **overrides) -> dict
        # one flattened JWS; device=None -> no publicKeySet (the "no certificate" case)
    microchip_manifest(entries) -> bytes                     # JSON array
    microchip_manifest_for(devs, signer) -> bytes            # uniqueId = f"0123{i:014x}"

Infineon (.7z)::

    infineon_chip_ids(n) -> ["0A091B5C00150000000{i}"...]
    infineon_reel(devs_by_bundle, chip_ids=None) -> bytes
        # outer 7z: <reel>_<guid>_E0Ex_Certs.7z per given bundle, a password-protected
        # _keys.7z and README.txt; inner archives hold <chipId>_E0Ex.pem
    seven_zip({name: bytes}, password=None) -> bytes         # any 7z, for odd cases
    keys_archive() -> bytes                                  # the password-protected _keys.7z (made once)
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import py7zr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from thingpress_cli.core.certificates import CertificateAuthority, Device, device_certificates, make_ca, manifest_line

REEL = "78211223032C7EFA"
GUID = "b41425b9-b42b-47fd-95c2-f981b4c61561"
BUNDLES = ("E0E0", "E0E1", "E0E2")


# -- certificates ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def shared_ca() -> CertificateAuthority:
    return make_ca()


@lru_cache(maxsize=64)
def _devices(n: int, expired: bool, prefix: str, start: int) -> tuple[Device, ...]:
    return tuple(device_certificates(shared_ca(), n, expired=expired, prefix=prefix, start=start, days=365))


def devices(n: int, *, expired: bool = False, prefix: str = "Device-", start: int = 0) -> list[Device]:
    """``n`` distinct device certificates ``<prefix><start>`` ... (valid a year, or expired yesterday)."""
    return list(_devices(n, expired, prefix, start))


def certificate_pem(device: Device) -> str:
    return device.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def fingerprint(device: Device) -> str:
    return hashlib.sha256(device.certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# -- generated ------------------------------------------------------------------------------------


def generated_manifest(devs: Iterable[Device]) -> bytes:
    return b"".join(manifest_line(d.pem) for d in devs)


# -- espressif ------------------------------------------------------------------------------------


def mac(i: int) -> str:
    return f"{0x24A160000000 + i:012X}"


def espressif_rows(devs: Iterable[Device]) -> list[tuple[str, str, str]]:
    return [(mac(i), d.name, certificate_pem(d)) for i, d in enumerate(devs)]


def espressif_manifest(rows: Iterable[Sequence[str]], header: str = "MAC,cn,cert") -> bytes:
    out = io.StringIO()
    out.write(header + "\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


# -- microchip ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MicrochipSigner:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def kid(self) -> str:
        ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return b64url(ski.digest)

    @property
    def x5t(self) -> str:
        return b64url(hashlib.sha256(self.certificate.public_bytes(serialization.Encoding.DER)).digest())


def microchip_signer(not_before: datetime | None = None, not_after: datetime | None = None,
                     name: str = "thingpress test manifest signer") -> MicrochipSigner:
    """An ES256 manifest signer: P-256 key and a self-signed certificate with a SKI."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = not_before or datetime(2024, 1, 1, tzinfo=UTC)
    end = not_after or datetime(2099, 12, 31, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return MicrochipSigner(key, cert)


def microchip_unique_id(i: int) -> str:
    return f"0123{i:014x}"


def microchip_entry(
    signer: MicrochipSigner,
    unique_id: str,
    device: Device | None = None,
    *,
    provisioned_at: datetime | str = datetime(2025, 6, 1, 20, 14, 53, tzinfo=UTC),
    protected: Mapping[str, Any] | None = None,
    payload_extra: Mapping[str, Any] | None = None,
    header_unique_id: str | None = None,
) -> dict[str, str | dict[str, str]]:
    """One signed entry. ``protected`` / ``payload_extra`` override or add fields before signing."""
    stamp = provisioned_at if isinstance(provisioned_at, str) else provisioned_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    payload: dict[str, Any] = {
        "version": 1, "model": "ATECC608C", "partNumber": "ATECC608C-TNGTLSU-B",
        "manufacturer": {"organizationName": "Microchip Technology Inc"},
        "groupId": "TESTGROUP", "provisioningTimestamp": stamp, "uniqueId": unique_id,
    }
    if device is not None:
        numbers = device.certificate.public_key().public_numbers()
        payload["publicKeySet"] = {"keys": [{
            "kid": "0", "kty": "EC", "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big")),
            "x5c": [base64.b64encode(device.certificate.public_bytes(serialization.Encoding.DER)).decode("ascii"),
                    base64.b64encode(shared_ca().intermediate.public_bytes(serialization.Encoding.DER)).decode()],
        }]}
    payload.update(payload_extra or {})
    head = {"alg": "ES256", "kid": signer.kid, "typ": "JWT", "x5t#S256": signer.x5t}
    head.update(protected or {})
    protected_b64 = b64url(json.dumps(head, separators=(",", ":")).encode())
    payload_b64 = b64url(json.dumps(payload, separators=(",", ":")).encode())
    der = signer.key.sign(f"{protected_b64}.{payload_b64}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return {
        "payload": payload_b64,
        "protected": protected_b64,
        "header": {"uniqueId": unique_id if header_unique_id is None else header_unique_id},
        "signature": b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
    }


def microchip_manifest(entries: Iterable[Any]) -> bytes:
    return json.dumps(list(entries), indent=2).encode("utf-8")


def microchip_manifest_for(devs: Iterable[Device], signer: MicrochipSigner) -> bytes:
    return microchip_manifest(microchip_entry(signer, microchip_unique_id(i), d) for i, d in enumerate(devs))


# -- infineon -------------------------------------------------------------------------------------


#: LZMA2 preset 1 and a plain header: ~1 ms per archive instead of ~100 ms with py7zr's defaults
#: (which allocate a large LZMA dictionary twice), still a real compressed 7z.
_FAST = [{"id": py7zr.FILTER_LZMA2, "preset": 1}]


def seven_zip(files: Mapping[str, bytes], password: str | None = None) -> bytes:
    """A 7z archive of ``files`` (name -> content); encrypted with py7zr's defaults when ``password``."""
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", password=password, filters=None if password else _FAST) as archive:
        if password is None:
            archive.set_encoded_header_mode(False)
        for name, data in files.items():
            archive.writestr(data, name)
    return out.getvalue()


@functools.cache
def keys_archive() -> bytes:
    """A reel's password-protected keys archive, made once per process: the same file in every reel (the
    provider never opens it), and py7zr's key derivation for the password takes ~150 ms of CPU each time."""
    return seven_zip({"pbs_keys.txt": b"0A091B5C, 00112233\n"}, password="transport")


def infineon_chip_ids(n: int) -> list[str]:
    return [f"0A091B5C0015{i:08X}" for i in range(n)]


def infineon_reel(devs_by_bundle: Mapping[str, Sequence[Device]], chip_ids: Sequence[str] | None = None,
                  reel: str = REEL, guid: str = GUID) -> bytes:
    """An outer reel 7z with one ``_Certs.7z`` per given bundle (same chip ids in each)."""
    files: dict[str, bytes] = {}
    for bundle, devs in devs_by_bundle.items():
        ids = list(chip_ids) if chip_ids is not None else infineon_chip_ids(len(devs))
        inner = seven_zip({f"{chip}_{bundle}.pem": d.pem for chip, d in zip(ids, devs, strict=True)})
        files[f"{reel}_{guid}_{bundle}_Certs.7z"] = inner
    files[f"{reel}_{guid}_keys.7z"] = keys_archive()
    files["README.txt"] = b"test reel bundle\n"
    return seven_zip(files)


def all_bundles(n: int) -> dict[str, list[Device]]:
    """Distinct certificates for the three bundles (same chips)."""
    return {bundle: devices(n, prefix=f"{bundle}-") for bundle in BUNDLES}


def at(days: float) -> datetime:
    """Now plus ``days`` (negative: in the past), UTC."""
    return datetime.now(UTC) + timedelta(days=days)


def zip_of(files: dict[str, str]) -> bytes:
    """A zip archive (a Lambda function's or layer's code) holding ``files``: name -> text."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return data.getvalue()

