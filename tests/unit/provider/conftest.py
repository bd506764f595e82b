"""Fixtures for the provider runtime: moto S3/SQS/DynamoDB, a manifest bucket and queues."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aws_fixtures import FAKE_CREDENTIALS, client, create_audit_table, create_bucket, create_queue, prepared_aws
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from thingpress.audit.table import AuditTable
from thingpress.provider.runtime import Provider, Tuning
from thingpress.settings import FunctionSettings


@dataclass
class Aws:
    s3: Any
    sqs: Any
    dynamodb: Any
    audit: AuditTable
    bucket: str
    import_queue: str
    manifest_queue: str

    def settings(self, vendor: str, **overrides: Any) -> FunctionSettings:
        values: dict[str, Any] = {
            "audit_table": self.audit.table, "import_queue_url": self.import_queue,
            "manifest_queue_url": self.manifest_queue, "vendor": vendor,
        }
        values.update(overrides)
        return FunctionSettings(**values)

    def provider(self, vendor: str = "generated", *, s3: Any = None, sqs: Any = None, tuning: Tuning | None = None,
                 wall_clock: Callable[[], float] = time.time, **settings: Any) -> Provider:
        return Provider(vendor, settings=self.settings(vendor, **settings), s3=s3 or self.s3, sqs=sqs or self.sqs,
                        dynamodb=self.dynamodb, tuning=tuning, sleep=lambda _s: None, wall_clock=wall_clock)


def _resources() -> tuple[str, str, str, str]:
    """The audit table, the versioned manifest bucket and the two queues (created once per process)."""
    return (create_audit_table(client("dynamodb")), create_bucket(client("s3"), "manifests"),
            create_queue(client("sqs"), "import"), create_queue(client("sqs"), "manifest-generated"))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """In-process AWS with an empty audit table, an empty versioned bucket and two empty queues."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with prepared_aws("provider", _resources) as (table, bucket, import_queue, manifest_queue):
        dynamodb = client("dynamodb")
        yield Aws(s3=client("s3"), sqs=client("sqs"), dynamodb=dynamodb, audit=AuditTable(dynamodb, table),
                  bucket=bucket, import_queue=import_queue, manifest_queue=manifest_queue)


_KEY = ec.generate_private_key(ec.SECP256R1())
_CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "thingpress provider test CA")])


def device_pem(cn: str, *, days: int = 365) -> bytes:
    """A small valid device certificate (one shared key: only the DER has to differ)."""
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(_CA_NAME).public_key(_KEY.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .sign(_KEY, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="session")
def pems() -> list[bytes]:
    """40 distinct device certificates Device-0 ... Device-39."""
    return [device_pem(f"Device-{i}") for i in range(40)]
