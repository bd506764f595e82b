"""What is done with each vendor's certificates, and which Microchip signers are trusted.

The rules (expired certificates, existing things, the Infineon bundle, new certificates' status)
are handed to the functions as they are (``thingpress.settings`` holds their names and choices,
one definition for both sides). The signers are files read here, at synth: each must be a
certificate file the functions will read (``thingpress.vendors.microchip_signers.read_signer_file``,
the same reader), so a wrong file fails the synth rather than every Microchip manifest; the stack
uploads them, and signers expired or expiring soon become synth warnings.

=====================================  ===========================================================
variable                               meaning (default)
=====================================  ===========================================================
THINGPRESS_EXPIRED_CERTIFICATES        ``reject`` or ``import`` (``reject``)
THINGPRESS_EXISTING_THING              ``keep`` or ``reject`` (``keep``)
THINGPRESS_INFINEON_BUNDLE             ``E0E0``, ``E0E1`` or ``E0E2`` (``E0E0``)
THINGPRESS_CERTIFICATE_STATUS          ``ACTIVE`` or ``INACTIVE``: new certificates' status (``ACTIVE``)
THINGPRESS_MICROCHIP_SIGNERS_DIR       folder of trusted Microchip signer certificates, uploaded to
                                       ``trust/microchip-signers/`` (``../shared/vendor-samples/
                                       microchip-signers`` when it exists; ``none`` for no signers);
                                       every file must be a certificate file the functions read
                                       (``thingpress.vendors.microchip_signers.read_signer_file``)
=====================================  ===========================================================

Two readers: the signers are read last, after the functions' runtime, as they always were.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from thingpress import settings
from thingpress.vendors import microchip_signers

from stacks.config.reader import Reader

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SIGNERS_DIR = REPO.parent / "shared" / "vendor-samples" / "microchip-signers"
_PEM_CERT = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True, slots=True)
class Signer:
    """A trusted Microchip manifest signer certificate, read at synth."""

    file_name: str
    pem: str


def read_rules(r: Reader) -> dict[str, Any]:
    """``expired_certificates``, ``existing_thing``, ``infineon_bundle``, ``certificate_status``."""
    return {
        "expired_certificates": r.choice(settings.EXPIRED_CERTIFICATES, settings.EXPIRED_POLICIES, "reject"),
        "existing_thing": r.choice(settings.EXISTING_THING, settings.EXISTING_THING_POLICIES, "keep"),
        "infineon_bundle": r.choice(settings.INFINEON_BUNDLE, settings.INFINEON_BUNDLES, "E0E0"),
        "certificate_status": r.choice(settings.CERTIFICATE_STATUS, settings.CERTIFICATE_STATUSES, "ACTIVE"),
    }


def read_signers(r: Reader, now: datetime) -> dict[str, Any]:
    """``signers``, and ``warnings``: the signers expired or expiring soon at ``now``
    (``microchip_signers.signer_notices``)."""
    signers, certificates = _signers(r.env, r.errors)
    return {"signers": signers, "warnings": tuple(microchip_signers.signer_notices(certificates, now))}


def _signers(env: Mapping[str, str], errors: list[str]) -> tuple[tuple[Signer, ...], list[x509.Certificate]]:
    """The signer files to upload, and their certificates."""
    name = "THINGPRESS_MICROCHIP_SIGNERS_DIR"
    raw = env.get(name, "").strip()
    if raw.lower() == "none":
        return (), []
    folder = Path(raw) if raw else DEFAULT_SIGNERS_DIR
    if not folder.is_dir():
        if raw:
            errors.append(f"{name}: {raw} is not a folder")
        return (), []
    out: list[Signer] = []
    read: list[x509.Certificate] = []
    for path in microchip_signers.signer_paths(folder):
        if not re.match(r"^[A-Za-z0-9._\-]+$", path.name):
            errors.append(f"{name}: {path.name}: file name must be [A-Za-z0-9._-] (it becomes an S3 key)")
            continue
        try:
            data = path.read_bytes()
            certificates = microchip_signers.read_signer_file(path.name, data)
        except OSError as exc:
            errors.append(f"{name}: {path.name}: cannot be read ({exc.__class__.__name__})")
            continue
        except microchip_signers.SignerFileError as exc:
            errors.append(f"{name}: {exc.reason}")
            continue
        # Uploaded as text: a PEM file as it is, a DER certificate PEM-encoded.
        pem = data.decode("ascii") if _PEM_CERT.encode() in data else "".join(
            c.public_bytes(Encoding.PEM).decode("ascii") for c in certificates)
        out.append(Signer(path.name, pem))
        read.extend(certificates)
    if not out and not any(e.startswith(name) for e in errors):
        errors.append(f"{name}: {raw or folder} holds no certificate files")
    return tuple(out), read
