"""Where the real vendor samples are: read in place, never copied into the repo.

``THINGPRESS_VENDOR_SAMPLES`` names the folder; by default it is the
``shared/vendor-samples`` folder beside the repository (the steering side's
shared folder). The demo, ``inspect``'s default Microchip signers and the tests
all find the samples here.
"""

from __future__ import annotations

import os
from pathlib import Path

from thingpress_cli.core.toolchain import REPO

SETTING = "THINGPRESS_VENDOR_SAMPLES"
DEFAULT = REPO.parent / "shared" / "vendor-samples"

#: The real samples and what each should give with default settings.
SAMPLES = {
    "ECC608C-TNGTLSU-B.json": "microchip",
    "ECC608-TMNGTLSS-B.json": "microchip",
    "manifest-infineon.7z": "infineon",
    "manifest-espressif.csv": "espressif",
    "certificates_test.txt": "generated",
}


def configured_dir() -> Path:
    return Path(os.environ.get(SETTING) or DEFAULT)


def samples_dir() -> Path | None:
    """The samples folder, or None when it is absent."""
    path = configured_dir()
    return path if path.is_dir() else None


def signers_dir() -> Path | None:
    """Microchip's manifest signer certificates among the samples, if present."""
    base = samples_dir()
    path = base / "microchip-signers" if base else None
    return path if path and path.is_dir() else None
