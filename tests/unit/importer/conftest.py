"""Fixtures for the importer tests (helpers in ``importer_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_fixtures import FAKE_CREDENTIALS, REGION, create_audit_table, in_process_aws
from importer_helpers import (
    POLICY, QUEUED_AT, THING_GROUP, THING_TYPE, Aws, CallRecorder, MessageFactory, der_sha256,
    device_pem, serialized_moto,
)

from thingpress.audit import AuditTable
from thingpress.messages import ImportMessage


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with in_process_aws(), serialized_moto():
        iot = boto3.client("iot", region_name=REGION)
        iot.create_policy(policyName=POLICY, policyDocument='{"Version":"2012-10-17","Statement":[]}')
        iot.create_thing_type(thingTypeName=THING_TYPE)
        iot.create_thing_group(thingGroupName=THING_GROUP)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        table = create_audit_table(dynamodb)
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
