"""A real emulator process (moto server + the thingpress extension) for the local tests."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.local.state import REGION


@pytest.fixture(scope="session")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path: Path = tmp_path_factory.mktemp("local") / "state.json"
    running = emulator.start(quotas="off", path=path, detach_propagation=0)  # a test turns it on (set_settings)
    yield running.url
    emulator.stop(path=path)


@pytest.fixture
def aws(emulator_url: str, monkeypatch: pytest.MonkeyPatch):
    """A factory of boto3 clients bound to the emulator."""
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(key, raising=False)

    def client(service: str, **kwargs):
        return boto3.client(
            service, endpoint_url=emulator_url, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing", **kwargs,
        )

    return client


@pytest.fixture
def iot_policy() -> str:
    """A small valid IoT policy document."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]})


@pytest.fixture
def self_signed_pem() -> Callable[[str], tuple[str, bytes]]:
    """A maker of self-signed device certificates: common name -> (PEM text, DER bytes)."""

    def make(cn: str) -> tuple[str, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode(), cert.public_bytes(serialization.Encoding.DER)

    return make
