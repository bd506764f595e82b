"""Helpers for the importer tests: moto IoT (valid certificate ids), call recorder, flaky client, messages.

moto answers as the emulator does (``aws_fixtures.in_process_aws``): certificate ids
are the SHA-256 of the DER and ``CreateThing`` on an existing thing answers as AWS
does. moto's in-process backends are not thread-safe (a concurrent batch can hit
"dictionary changed size during iteration"), where each AWS request is atomic:
``serialized_moto`` makes each emulated request atomic with one lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from aws_fixtures import REGION
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.botocore_stubber import BotocoreStubber

from thingpress.audit.keys import manifest_id
from thingpress.audit.states import QUEUED
from thingpress.audit.summaries import Progress
from thingpress.audit.table import AuditTable
from thingpress.importer.rules import CertificateArns
from thingpress.importer.runtime import Importer
from thingpress.messages import ImportMessage
from thingpress.settings import FunctionSettings
from thingpress.throttle import Backoff, Throttle

POLICY = "thingpress-device"
THING_TYPE = "thingpress-device"
THING_GROUP = "thingpress-imported"
QUEUED_AT = "2026-11-21T01:02:03Z"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:thingpress-importer"

_KEY = ec.generate_private_key(ec.SECP256R1())
_CA = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "thingpress importer test CA")])


def device_pem(cn: str) -> str:
    """A small valid device certificate (one shared key: only the DER has to differ)."""
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(_CA).public_key(_KEY.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .sign(_KEY, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def der_sha256(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@contextlib.contextmanager
def serialized_moto() -> Iterator[None]:
    """One emulated AWS request at a time, whatever the number of client threads."""
    original = BotocoreStubber.__call__
    lock = threading.RLock()

    def call(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = call  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.__call__ = original  # type: ignore[method-assign]


class CallRecorder:
    """Records a client's API calls through botocore's ``before-call.<service>.*`` event."""

    def __init__(self, client: Any, service: str = "iot"):
        self.calls: list[str] = []
        client.meta.events.register(f"before-call.{service}.*", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def reset(self) -> None:
        self.calls.clear()


class FlakyIot:
    """Wraps an IoT client: ``api`` raises ``error_code`` for its first ``times`` calls."""

    def __init__(self, client: Any, api: str, times: int, error_code: str = "ThrottlingException",
                 status: int = 400):
        self._client = client
        self._api = api
        self.remaining = times
        self._error = {"Error": {"Code": error_code, "Message": "Rate exceeded"},
                       "ResponseMetadata": {"HTTPStatusCode": status}}
        self.raised = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target) or self._client.meta.method_to_api_mapping.get(name) != self._api:
            return target

        def call(**kwargs: Any) -> Any:
            if self.remaining != 0:
                self.remaining -= 1
                self.raised += 1
                raise ClientError(self._error, self._api)
            return target(**kwargs)
        return call


@dataclass
class Aws:
    iot: Any
    dynamodb: Any
    audit: AuditTable
    recorder: CallRecorder
    sleeps: list[float] = field(default_factory=list)

    def settings(self, **overrides: Any) -> FunctionSettings:
        base = FunctionSettings(audit_table=self.audit.table, vendor="generated", thing_type=THING_TYPE,
                                thing_group=THING_GROUP, policy_names=(POLICY,), max_receive_count=3)
        return replace(base, **overrides)

    def throttle(self, settings: FunctionSettings) -> Throttle:
        return Throttle.from_settings(settings, sleep=self.sleeps.append, backoff=Backoff(max_attempts=5))

    def importer(self, iot: Any = None, **overrides: Any) -> Importer:
        settings = self.settings(**overrides)
        return Importer(iot or self.iot, self.audit, settings, arns=CertificateArns.from_function_arn(
            FUNCTION_ARN, region=REGION), throttle=self.throttle(settings))

    def start_manifest(self, count: int, *, key: str = "manifest.txt", version: str = "v1") -> str:
        """A manifest summary that has finished parsing with ``count`` queued entries."""
        mid = manifest_id("generated", "manifests", key, version)
        self.audit.start_manifest(mid, vendor="generated", bucket="manifests", key=key, version=version,
                                  etag="e", size=1)
        self.audit.checkpoint(mid, count, Progress(entries=count, queued=count), state=QUEUED, parse_done=True)
        return mid

    # -- IoT state ---------------------------------------------------------------

    def certificate(self, certificate_id: str) -> dict[str, Any]:
        return self.iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]

    def thing(self, name: str) -> dict[str, Any]:
        return self.iot.describe_thing(thingName=name)

    def principals(self, name: str) -> list[str]:
        return self.iot.list_thing_principals(thingName=name)["principals"]

    def policies(self, certificate_arn: str) -> list[str]:
        return [p["policyName"] for p in self.iot.list_attached_policies(target=certificate_arn)["policies"]]

    def group_things(self) -> list[str]:
        return self.iot.list_things_in_thing_group(thingGroupName=THING_GROUP)["things"]


MessageFactory = Callable[..., ImportMessage]
