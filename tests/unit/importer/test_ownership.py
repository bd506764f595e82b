"""What an environment owns: the environment attribute on each thing, and the audit row's ownership flags."""

from __future__ import annotations

from importer_helpers import QUEUED_AT, Aws, MessageFactory, device_pem

from thingpress.audit.states import ALREADY_PRESENT, IMPORTED
from thingpress.importer.rules import THING_EXISTED

NEW_CERTIFICATE_CALLS = ["RegisterCertificateWithoutCA", "CreateThing", "AttachThingPrincipal", "AttachPolicy",
                         "AddThingToThingGroup"]


def test_new_thing_records_its_environment_within_the_same_five_calls(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    aws.recorder.reset()

    outcome = aws.importer(environment="pr7").handle(msg.encode(), message_id="m-1")

    assert aws.recorder.calls == NEW_CERTIFICATE_CALLS  # the attribute goes into CreateThing: no extra call
    assert aws.thing("Device-1")["attributes"] == {"thingpress_manifest": mid, "thingpress_vendor": "generated",
                                                   "thingpress_env": "pr7", "thingpress_queued": QUEUED_AT}
    row = aws.audit.get_outcome(mid, msg.fingerprint)
    assert row is not None
    assert (row["status"], row["environment"], row["certificate_registered"], row["thing_created"]) == (
        IMPORTED, "pr7", True, True)
    assert (outcome.certificate_registered, outcome.thing_created) == (True, True)


def test_untyped_thing_keeps_to_three_attributes(aws: Aws, message: MessageFactory) -> None:
    """IoT allows 3 attributes on a thing without a thing type: thingpress_queued is the one left out."""
    mid = aws.start_manifest(1)
    msg = message(mid, 1)

    aws.importer(environment="dev", thing_type="").handle(msg.encode(), message_id="m-1")

    assert aws.thing("Device-1")["attributes"] == {"thingpress_manifest": mid, "thingpress_vendor": "generated",
                                                   "thingpress_env": "dev"}


def test_found_certificate_and_thing_are_recorded_as_not_ours(aws: Aws, message: MessageFactory) -> None:
    """Another environment imported the same certificate and thing first: this one owns neither."""
    pem = device_pem("Device-1")
    other = aws.start_manifest(1, key="other.txt")
    aws.importer(environment="dev").handle(message(other, 1, pem=pem).encode(), message_id="m-0")
    mid = aws.start_manifest(1)
    msg = message(mid, 1, pem=pem)

    outcome = aws.importer(environment="local").handle(msg.encode(), message_id="m-1")

    assert (outcome.status, outcome.reason) == (ALREADY_PRESENT, THING_EXISTED)
    row = aws.audit.get_outcome(mid, msg.fingerprint)
    assert row is not None
    assert (row["environment"], row["certificate_registered"], row["thing_created"]) == ("local", False, False)
    assert aws.thing("Device-1")["attributes"]["thingpress_env"] == "dev"  # the creator's, kept


def test_redelivery_that_finds_the_certificate_cannot_claim_or_disown_it(aws: Aws, message: MessageFactory) -> None:
    """An earlier attempt of the same message may have registered it: the flag is left unknown (absent)."""
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    importer = aws.importer(environment="dev")
    importer._import(msg, importer.throttle.stats, None)  # the first attempt's IoT calls, then a crash

    importer.handle(msg.encode(), message_id="m-1", receive_count=2)

    row = aws.audit.get_outcome(mid, msg.fingerprint)
    assert row is not None
    assert row["status"] == IMPORTED and row["thing_created"] is True
    assert "certificate_registered" not in row
