"""Fixtures for the importer tests (helpers in ``importer_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_fixtures import FAKE_CREDENTIALS, client, create_audit_table, prepared_aws
from importer_helpers import (
    POLICY, QUEUED_AT, THING_GROUP, THING_TYPE, Aws, CallRecorder, MessageFactory, der_sha256,
    device_pem, serialized_moto,
)

from thingpress.audit.table import AuditTable
from thingpress.messages import ImportMessage


def _resources() -> str:
    """The IoT policy, thing type and thing group, and the audit table (created once per process)."""
    iot = client("iot")
    iot.create_policy(policyName=POLICY, policyDocument='{"Version":"2012-10-17","Statement":[]}')
    iot.create_thing_type(thingTypeName=THING_TYPE)
    iot.create_thing_group(thingGroupName=THING_GROUP)
    return create_audit_table(client("dynamodb"))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """In-process AWS: the IoT policy, thing type and group (no certificates, no things), an empty audit table."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with prepared_aws("importer", _resources) as table, serialized_moto():
        iot, dynamodb = client("iot"), client("dynamodb")
        yield Aws(iot=iot, dynamodb=dynamodb, audit=AuditTable(dynamodb, table), recorder=CallRecorder(iot))


@pytest.fixture
def message() -> MessageFactory:
    """``message(mid, position, thing_name=..., pem=...)``: a valid import message."""
    def make(mid: str, position: int = 1, *, thing_name: str | None = None, pem: str | None = None,
             **overrides: Any) -> ImportMessage:
        name = thing_name or f"Device-{position}"
        pem = pem or device_pem(name)
        values: dict[str, Any] = {"manifest_id": mid, "vendor": "generated", "position": position,
                                  "thing_name": name, "fingerprint": der_sha256(pem), "certificate_pem": pem,
                                  "queued_at": QUEUED_AT}
        values.update(overrides)
        return ImportMessage(**values)
    return make
