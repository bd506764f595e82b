"""The Microchip signer certificates a provider verifies manifests with, read from S3 (``load_signers``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from cryptography import x509

from thingpress.provider.telemetry import logger
from thingpress.settings import SettingsError
from thingpress.vendors import microchip_signers


def load_signers(s3: Any, uri: str) -> tuple[x509.Certificate, ...]:
    """Every certificate in the signer files under ``s3://bucket/prefix/`` (``microchip_signers.read_signer_file``).

    Objects whose names are not signer file names (``microchip_signers.SIGNER_SUFFIXES``) are
    ignored with a warning naming them: the stack never uploads such a file.
    """
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise SettingsError(f"Microchip signers location must be s3://bucket/prefix/, got {uri!r}")
    prefix = parsed.path.lstrip("/")
    signers: list[x509.Certificate] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=parsed.netloc, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not microchip_signers.is_signer_file(obj["Key"]):
                if not obj["Key"].endswith("/"):
                    logger.warning("not a Microchip signer file name; ignored",
                                   extra={"object": f"s3://{parsed.netloc}/{obj['Key']}",
                                          "accepted": list(microchip_signers.SIGNER_SUFFIXES)})
                continue
            data = s3.get_object(Bucket=parsed.netloc, Key=obj["Key"])["Body"].read()
            try:
                signers.extend(microchip_signers.read_signer_file(f"s3://{parsed.netloc}/{obj['Key']}", data))
            except microchip_signers.SignerFileError as exc:
                raise SettingsError(f"Microchip signer {exc.reason}") from None
    if not signers:
        suffixes = "/".join(microchip_signers.SIGNER_SUFFIXES)
        raise SettingsError(f"no Microchip signer certificates ({suffixes}) under {uri}")
    return tuple(signers)
