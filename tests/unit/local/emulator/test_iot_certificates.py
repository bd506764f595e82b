"""UpdateCertificate refused as AWS refuses it (thingpress_cli.local.emulator.iot): a REVOKED certificate keeps
its status (IoT developer guide, "Revoke a client certificate"), and the statuses the API reference says throw
are refused. In-process moto with the project's patch set (``in_process_aws``)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from thingpress_cli.core.certificates import device_certificates, make_ca


def registered(iot: Any, status: str = "INACTIVE") -> str:
    (device,) = device_certificates(make_ca(), 1, prefix="Emu-")
    pem = device.pem.decode()
    return iot.register_certificate_without_ca(certificatePem=pem, status=status)["certificateId"]


def status(iot: Any, certificate_id: str) -> str:
    return iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]["status"]


def refused(iot: Any, certificate_id: str, new_status: str) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        iot.update_certificate(certificateId=certificate_id, newStatus=new_status)
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_revoked_certificate_keeps_its_status(iot):
    certificate = registered(iot)
    iot.update_certificate(certificateId=certificate, newStatus="ACTIVE")
    iot.update_certificate(certificateId=certificate, newStatus="REVOKED")
    assert refused(iot, certificate, "ACTIVE") == ("CertificateStateException", 406)
    assert refused(iot, certificate, "INACTIVE") == ("CertificateStateException", 406)
    iot.update_certificate(certificateId=certificate, newStatus="REVOKED")  # idempotent
    assert status(iot, certificate) == "REVOKED"


def test_active_and_inactive_go_both_ways_and_the_internal_statuses_are_refused(iot):
    certificate = registered(iot)
    for wanted in ("ACTIVE", "INACTIVE", "ACTIVE", "ACTIVE"):
        iot.update_certificate(certificateId=certificate, newStatus=wanted)
        assert status(iot, certificate) == wanted
    for internal in ("PENDING_TRANSFER", "PENDING_ACTIVATION"):
        assert refused(iot, certificate, internal) == ("InvalidRequestException", 400)
    assert status(iot, certificate) == "ACTIVE"
