"""Thing attributes from the manifest: within IoT's limits, only with a thing type, idempotent."""

from __future__ import annotations

import json

import pytest
from importer_helpers import QUEUED_AT, Aws, MessageFactory

from thingpress.attributes import MAX_WITH_TYPE, device_attributes, problem
from thingpress.messages import MessageError, decode

OWN = {"thingpress_vendor": "generated", "thingpress_queued": QUEUED_AT}


def test_device_attributes_per_vendor():
    assert device_attributes("microchip", {"uniqueId": "0123ab", "partNumber": "ATECC608C-TNGTLSU-B",
                                           "signer_kid": "x"}) == {"device_id": "0123ab",
                                                                   "part_number": "ATECC608C-TNGTLSU-B"}
    assert device_attributes("infineon", {"chip_id": "0A091B5C0015", "bundle": "E0E0"}) == {"device_id": "0A091B5C0015"}
    assert device_attributes("espressif", {"cn": "esp32-s3 device"}) == {}  # a space: left out, never altered
    assert device_attributes("espressif", {"cn": "esp32-s3"}) == {"common_name": "esp32-s3"}
    assert device_attributes("generated", {"anything": "x"}) == {}
    assert device_attributes("microchip", {"uniqueId": "x" * 801}) == {}


def test_attribute_rules():
    assert problem("device_id", "a" * 800) is None
    assert problem("device_id", "a" * 801) is not None
    assert problem("device id", "a") is not None
    assert problem("part_number", "ATECC608C=B") is not None


def test_message_carries_attributes_only_when_there_are_some(message: MessageFactory):
    plain = message("generated-0123456789abcdef0123", 1)
    assert "attributes" not in json.loads(plain.encode())  # unchanged wire format without device facts
    rich = message("generated-0123456789abcdef0123", 1, attributes={"device_id": "0123ab"})
    assert decode(rich.encode()).attributes == {"device_id": "0123ab"}
    body = json.loads(rich.encode())
    body["attributes"] = {"device_id": "not ok!"}
    with pytest.raises(MessageError, match="attribute device_id value must be"):
        decode(json.dumps(body))


def test_typed_thing_gets_the_device_attributes(aws: Aws, message: MessageFactory):
    mid = aws.start_manifest(1)
    msg = message(mid, 1, attributes={"device_id": "0123ab", "part_number": "ATECC608C"})
    assert aws.importer().handle(msg.encode(), message_id="m1").status == "IMPORTED"
    assert aws.thing(msg.thing_name)["attributes"] == {
        "thingpress_manifest": mid, **OWN, "device_id": "0123ab", "part_number": "ATECC608C"}


def test_untyped_thing_keeps_three_attributes(aws: Aws, message: MessageFactory):
    mid = aws.start_manifest(1)
    msg = message(mid, 1, attributes={"device_id": "0123ab"})
    assert aws.importer(thing_type="").handle(msg.encode(), message_id="m1").status == "IMPORTED"
    assert aws.thing(msg.thing_name)["attributes"] == {"thingpress_manifest": mid, **OWN}


def test_at_most_fifty_attributes_and_a_redelivery_sends_the_same(aws: Aws, message: MessageFactory):
    mid = aws.start_manifest(1)
    many = {f"a{i:02d}": str(i) for i in range(60)}
    msg = message(mid, 1, attributes=many)
    importer = aws.importer()
    importer.handle(msg.encode(), message_id="m1")
    attributes = aws.thing(msg.thing_name)["attributes"]
    assert len(attributes) == MAX_WITH_TYPE and "a46" in attributes and "a47" not in attributes
    # a duplicate copy makes the identical CreateThing: accepted as the same request, nothing changes
    again = importer.handle(msg.encode(), message_id="m2")
    assert (again.status, again.redelivery) == ("IMPORTED", True)
    assert aws.thing(msg.thing_name)["attributes"] == attributes


def test_certificates_can_be_registered_inactive(aws: Aws, message: MessageFactory):
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    outcome = aws.importer(certificate_status="INACTIVE").handle(msg.encode(), message_id="m1")
    assert outcome.status == "IMPORTED"
    assert aws.certificate(outcome.certificate_id)["status"] == "INACTIVE"


def test_certificate_status_setting_is_checked():
    from thingpress.settings import CERTIFICATE_STATUS, FunctionSettings, SettingsError

    assert FunctionSettings.from_env({"THINGPRESS_AUDIT_TABLE": "t"}).certificate_status == "ACTIVE"
    assert FunctionSettings.from_env({"THINGPRESS_AUDIT_TABLE": "t", CERTIFICATE_STATUS: "INACTIVE"}
                                     ).certificate_status == "INACTIVE"
    with pytest.raises(SettingsError, match="THINGPRESS_CERTIFICATE_STATUS must be one of ACTIVE, INACTIVE"):
        FunctionSettings.from_env({"THINGPRESS_AUDIT_TABLE": "t", CERTIFICATE_STATUS: "revoked"})
