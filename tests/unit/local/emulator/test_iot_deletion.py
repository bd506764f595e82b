"""The emulator refuses IoT deletions as AWS does (thingpress_cli.local.emulator.iot_deletion, issue 11).

Each refusal is checked for AWS's exception type and HTTP status (from the API
reference page cited in iot_deletion), and each rule for the state it leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from botocore.exceptions import ClientError

from thingpress_cli.local.emulator import iot_detach
from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.local.emulator.iot_deletion import AWS_THING_TYPE_WAIT, THING_TYPE_WAIT_SETTING, DeletionRules


def refusal(call, *args, **kwargs) -> tuple[str, int, str]:
    """(error code, HTTP status, message) of a call that must be refused."""
    with pytest.raises(ClientError) as refused:
        call(*args, **kwargs)
    error = refused.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], error["Error"].get("Message", "")


@pytest.fixture
def deprecation_wait(emulator_url: str) -> Iterator[Callable[[float], dict[str, float]]]:
    """Set the emulator's thing-type deprecation wait; AWS's 300 s again afterwards."""
    yield lambda seconds: emulator.set_settings(emulator_url, {"thing_type_deprecation_wait": seconds})
    emulator.set_settings(emulator_url, {"thing_type_deprecation_wait": AWS_THING_TYPE_WAIT})


@pytest.fixture
def certificate(self_signed_pem) -> Callable[..., tuple[str, str]]:
    """Registers an ACTIVE certificate; returns (id, ARN)."""

    def register(iot, name: str) -> tuple[str, str]:
        pem, _ = self_signed_pem(name)
        answer = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
        return answer["certificateId"], answer["certificateArn"]

    return register


def test_a_thing_type_is_deleted_only_deprecated_after_the_wait_and_unused(aws, deprecation_wait):
    iot = aws("iot")
    iot.create_thing_type(thingTypeName="del-type")
    iot.create_thing(thingName="del-type-user", thingTypeName="del-type")

    code, status, message = refusal(iot.delete_thing_type, thingTypeName="del-type")
    assert (code, status) == ("InvalidRequestException", 400) and "not deprecated" in message

    iot.deprecate_thing_type(thingTypeName="del-type")
    metadata = iot.describe_thing_type(thingTypeName="del-type")["thingTypeMetadata"]
    assert metadata["deprecated"] is True and metadata["deprecationDate"]
    code, status, message = refusal(iot.delete_thing_type, thingTypeName="del-type")  # AWS's 300 s have not passed
    assert (code, status) == ("InvalidRequestException", 400)
    assert "Please wait for 5 minutes after deprecation and then retry" in message  # what Terraform retries on

    deprecation_wait(0)
    code, status, message = refusal(iot.delete_thing_type, thingTypeName="del-type")
    assert (code, status) == ("InvalidRequestException", 400) and "1 things are still associated" in message
    with pytest.raises(iot.exceptions.InvalidRequestException):  # and no new thing may use it
        iot.create_thing(thingName="del-type-late", thingTypeName="del-type")

    iot.update_thing(thingName="del-type-user", removeThingType=True)
    iot.delete_thing_type(thingTypeName="del-type")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_type(thingTypeName="del-type")


def test_undeprecating_starts_the_wait_again(aws, deprecation_wait):
    iot = aws("iot")
    iot.create_thing_type(thingTypeName="del-undo")
    iot.deprecate_thing_type(thingTypeName="del-undo")
    iot.deprecate_thing_type(thingTypeName="del-undo", undoDeprecate=True)
    assert "deprecationDate" not in iot.describe_thing_type(thingTypeName="del-undo")["thingTypeMetadata"]
    deprecation_wait(0)
    assert "not deprecated" in refusal(iot.delete_thing_type, thingTypeName="del-undo")[2]


def test_the_deprecation_wait_is_a_setting(emulator_url, tmp_path, monkeypatch):
    assert DeletionRules().deprecation_wait == AWS_THING_TYPE_WAIT == 300
    assert DeletionRules.from_environment({THING_TYPE_WAIT_SETTING: "2.5"}).deprecation_wait == 2.5
    assert DeletionRules.from_environment({}).deprecation_wait == 300
    with pytest.raises(ValueError, match="0..3600"):
        emulator.set_settings(emulator_url, {"thing_type_deprecation_wait": -1})
    with pytest.raises(ValueError, match="unknown emulator settings: colour"):
        emulator.set_settings(emulator_url, {"colour": 1})

    path = tmp_path / "state.json"  # what `thingpress local up` does: start the emulator with a short wait
    monkeypatch.delenv(iot_detach.SETTING, raising=False)
    started = emulator.start(quotas="off", path=path, thing_type_wait=3)
    try:  # and the detach propagation at its default (iot_detach): a few seconds, as AWS
        assert emulator.set_settings(started.url, {}) == {"thing_type_deprecation_wait": 3.0, "detach_propagation": 3.0}
    finally:
        emulator.stop(path=path)


def test_a_policy_is_deleted_only_when_detached_from_every_target_and_without_other_versions(aws, iot_policy, certificate):
    iot = aws("iot")
    iot.create_policy(policyName="del-policy", policyDocument=iot_policy)
    _, cert_arn = certificate(iot, "del-policy-cert")
    group_arn = iot.create_thing_group(thingGroupName="del-policy-group")["thingGroupArn"]
    iot.attach_policy(policyName="del-policy", target=cert_arn)
    iot.attach_policy(policyName="del-policy", target=group_arn)

    assert refusal(iot.delete_policy, policyName="del-policy")[:2] == ("DeleteConflictException", 409)
    iot.detach_policy(policyName="del-policy", target=cert_arn)
    assert refusal(iot.delete_policy, policyName="del-policy")[:2] == ("DeleteConflictException", 409)  # the group
    iot.detach_policy(policyName="del-policy", target=group_arn)

    iot.create_policy_version(policyName="del-policy", policyDocument=iot_policy, setAsDefault=False)
    code, status, message = refusal(iot.delete_policy, policyName="del-policy")
    assert (code, status) == ("DeleteConflictException", 409) and "versions other than the default" in message
    iot.delete_policy_version(policyName="del-policy", policyVersionId="2")

    iot.delete_policy(policyName="del-policy")
    assert "del-policy" not in [p["policyName"] for p in iot.list_policies()["policies"]]


def test_a_certificate_is_deleted_only_inactive_and_detached_force_overrides_policies_only(aws, iot_policy, certificate):
    iot = aws("iot")
    iot.create_policy(policyName="del-cert-policy", policyDocument=iot_policy)
    cert_id, cert_arn = certificate(iot, "del-cert")
    iot.create_thing(thingName="del-cert-thing")
    iot.attach_thing_principal(thingName="del-cert-thing", principal=cert_arn)
    iot.attach_policy(policyName="del-cert-policy", target=cert_arn)

    for force in (False, True):  # ACTIVE: refused, forced or not
        code, status, _ = refusal(iot.delete_certificate, certificateId=cert_id, forceDelete=force)
        assert (code, status) == ("CertificateStateException", 406)
    iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
    for force in (False, True):  # attached to a thing: refused, forced or not
        code, status, message = refusal(iot.delete_certificate, certificateId=cert_id, forceDelete=force)
        assert (code, status) == ("DeleteConflictException", 409) and "Things must be detached" in message
    iot.detach_thing_principal(thingName="del-cert-thing", principal=cert_arn)
    code, status, message = refusal(iot.delete_certificate, certificateId=cert_id)  # a policy is attached
    assert (code, status) == ("DeleteConflictException", 409) and "policies must be detached" in message

    iot.delete_certificate(certificateId=cert_id, forceDelete=True)  # inactive, no thing: force may
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_certificate(certificateId=cert_id)
    iot.delete_policy(policyName="del-cert-policy")  # the forced delete took its policy attachment along


def test_a_thing_is_deleted_only_without_principals_and_a_missing_thing_is_no_error(aws, certificate):
    iot = aws("iot")
    _, cert_arn = certificate(iot, "del-thing-cert")
    iot.create_thing(thingName="del-thing")
    iot.create_thing_group(thingGroupName="del-thing-group")
    iot.add_thing_to_thing_group(thingGroupName="del-thing-group", thingName="del-thing")
    iot.attach_thing_principal(thingName="del-thing", principal=cert_arn)

    code, status, message = refusal(iot.delete_thing, thingName="del-thing")
    assert (code, status, message) == (
        "InvalidRequestException", 400, "Cannot delete. Thing del-thing is still attached to one or more principals")

    iot.detach_thing_principal(thingName="del-thing", principal=cert_arn)
    iot.delete_thing(thingName="del-thing")
    iot.delete_thing(thingName="del-thing")  # gone already: AWS answers 200
    assert iot.list_things_in_thing_group(thingGroupName="del-thing-group")["things"] == []


def test_a_deleted_thing_group_leaves_no_policy_attachment_behind(aws, iot_policy):
    iot = aws("iot")
    iot.create_policy(policyName="del-group-policy", policyDocument=iot_policy)
    parent = iot.create_thing_group(thingGroupName="del-group-parent")["thingGroupArn"]
    iot.create_thing_group(thingGroupName="del-group-child", parentGroupName="del-group-parent")
    iot.attach_policy(policyName="del-group-policy", target=parent)

    assert refusal(iot.delete_thing_group, thingGroupName="del-group-parent")[:2] == ("InvalidRequestException", 400)
    iot.delete_thing_group(thingGroupName="del-group-child")
    iot.delete_thing_group(thingGroupName="del-group-parent")
    iot.delete_policy(policyName="del-group-policy")
