"""A detached principal still counts as attached while the detach propagates (thingpress_cli.local.emulator.iot_detach).

AWS: https://docs.aws.amazon.com/iot/latest/apireference/API_DetachThingPrincipal.html ("This call is
asynchronous. It might take several seconds for the detachment to propagate."). In-process moto on a
:class:`ManualClock` (the ``detach_propagation`` fixture): no sleeps. The last tests check the
emulator process's wiring (its settings endpoint and its default).
"""

from __future__ import annotations

from collections.abc import Iterator

import aws_fixtures
import pytest
from aws_fixtures import in_process_aws
from botocore.exceptions import ClientError

from thingpress_cli.local.emulator import iot_detach
from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.local.emulator.iot_deletion import DeletionRules
from thingpress_cli.local.emulator.iot_detach import DetachPropagation


def refusal(call, **kwargs) -> tuple[str, int, str]:
    """(error code, HTTP status, message) of a call that must be refused."""
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    error = refused.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Message"]


def attached_pair(iot, pem: str, thing: str) -> tuple[str, str]:
    """An INACTIVE certificate attached to a new thing (all DeleteCertificate asks but the detach): (id, ARN)."""
    cert = iot.register_certificate_without_ca(certificatePem=pem, status="INACTIVE")
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=cert["certificateArn"])
    return cert["certificateId"], cert["certificateArn"]


def exists(call, **kwargs) -> bool:
    try:
        call(**kwargs)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ResourceNotFoundException"
        return False
    return True


@pytest.fixture
def iot(detach_propagation) -> Iterator:
    with in_process_aws():
        yield aws_fixtures.client("iot")


def test_deletes_are_refused_while_the_detach_propagates_and_pass_after(iot, detach_propagation, self_signed_pem):
    cert_id, cert_arn = attached_pair(iot, self_signed_pem("detach-a")[0], "detach-a")
    detach_propagation.configure(3)
    iot.detach_thing_principal(thingName="detach-a", principal=cert_arn)
    assert iot.list_thing_principals(thingName="detach-a")["principals"] == []  # lists: not modelled, at once

    detach_propagation.clock.advance(2.999)
    assert refusal(iot.delete_certificate, certificateId=cert_id) == (
        "DeleteConflictException", 409, f"Things must be detached before deletion (arn: {cert_arn})")
    assert refusal(iot.delete_thing, thingName="detach-a") == (
        "InvalidRequestException", 400, "Cannot delete. Thing detach-a is still attached to one or more principals")
    assert exists(iot.describe_certificate, certificateId=cert_id) and exists(iot.describe_thing, thingName="detach-a")

    detach_propagation.clock.advance(0.001)  # 3 s after the detach: propagated
    iot.delete_certificate(certificateId=cert_id)
    iot.delete_thing(thingName="detach-a")
    assert not exists(iot.describe_certificate, certificateId=cert_id)
    assert not exists(iot.describe_thing, thingName="detach-a")


def test_only_the_detached_pair_waits_and_the_setting_applies_to_pending_detaches(iot, detach_propagation,
                                                                                  self_signed_pem):
    detach_propagation.configure(5)
    cert_id, cert_arn = attached_pair(iot, self_signed_pem("detach-b")[0], "detach-b")
    other_id, _ = attached_pair(iot, self_signed_pem("detach-c")[0], "detach-c")
    iot.detach_thing_principal(thingName="detach-b", principal=cert_arn)
    iot.create_thing(thingName="detach-untouched")

    iot.delete_thing(thingName="detach-untouched")  # never attached: no wait
    assert refusal(iot.delete_certificate, certificateId=other_id)[:2] == ("DeleteConflictException", 409)  # attached
    assert refusal(iot.delete_certificate, certificateId=cert_id)[:2] == ("DeleteConflictException", 409)

    detach_propagation.configure(0)  # off: what is propagating is done at once
    iot.delete_certificate(certificateId=cert_id)
    iot.delete_thing(thingName="detach-b")
    assert not exists(iot.describe_thing, thingName="detach-b")


def test_off_in_process_unless_configured(iot, detach_propagation, self_signed_pem):
    assert detach_propagation.seconds == 0
    cert_id, cert_arn = attached_pair(iot, self_signed_pem("detach-d")[0], "detach-d")
    iot.detach_thing_principal(thingName="detach-d", principal=cert_arn)
    iot.delete_certificate(certificateId=cert_id)
    iot.delete_thing(thingName="detach-d")
    assert not exists(iot.describe_thing, thingName="detach-d")


def test_the_propagation_is_a_setting():
    assert iot_detach.from_environment({}) == iot_detach.EMULATOR_SECONDS == 3.0
    assert iot_detach.from_environment({iot_detach.SETTING: "0.5"}) == 0.5
    rules = DeletionRules(propagation=DetachPropagation())
    rules.configure({"detach_propagation": 2})
    assert rules.as_dict() == {"thing_type_deprecation_wait": 300.0, "detach_propagation": 2.0}
    with pytest.raises(ValueError, match=r"detach_propagation must be 0\.\.300 seconds, not -1"):
        rules.configure({"detach_propagation": -1, "thing_type_deprecation_wait": 1})
    assert rules.as_dict() == {"thing_type_deprecation_wait": 300.0, "detach_propagation": 2.0}  # nothing applied


@pytest.fixture
def emulator_propagation(emulator_url: str) -> Iterator:
    """Set the test emulator's detach propagation; 0 (how the test emulator starts) again afterwards."""
    yield lambda seconds: emulator.set_settings(emulator_url, {"detach_propagation": seconds})
    emulator.set_settings(emulator_url, {"detach_propagation": 0})


def test_the_emulator_refuses_during_propagation_through_its_settings(aws, emulator_propagation, self_signed_pem):
    iot = aws("iot")
    cert_id, cert_arn = attached_pair(iot, self_signed_pem("detach-e")[0], "detach-e")
    assert emulator_propagation(300)["detach_propagation"] == 300
    iot.detach_thing_principal(thingName="detach-e", principal=cert_arn)
    assert refusal(iot.delete_certificate, certificateId=cert_id)[:2] == ("DeleteConflictException", 409)
    assert refusal(iot.delete_thing, thingName="detach-e") == (
        "InvalidRequestException", 400, "Cannot delete. Thing detach-e is still attached to one or more principals")

    emulator_propagation(0)
    iot.delete_certificate(certificateId=cert_id)
    iot.delete_thing(thingName="detach-e")
    assert not exists(iot.describe_thing, thingName="detach-e")
    with pytest.raises(ValueError, match=r"detach_propagation must be 0\.\.300 seconds"):
        emulator_propagation(301)
