"""thingpress.importer against moto IoT and DynamoDB: calls, IoT state, audit rows, counters."""

from __future__ import annotations

import json

import pytest
from importer_helpers import (
    POLICY, QUEUED_AT, THING_TYPE, Aws, CallRecorder, FlakyIot, MessageFactory, der_sha256, device_pem,
)

from thingpress.audit.keys import UNREADABLE_MANIFEST
from thingpress.audit.states import ALREADY_PRESENT, COMPLETE, FAILED, IMPORTED, QUEUED, REJECTED
from thingpress.importer.results import RetryLater
from thingpress.importer.rules import THING_EXISTED

#: THINGPRESS_POLICY_ATTACHMENT=certificate: the device policy attached to each certificate.
NEW_CERTIFICATE_CALLS = ["RegisterCertificateWithoutCA", "CreateThing", "AttachThingPrincipal", "AttachPolicy",
                         "AddThingToThingGroup"]
#: The default (thing-group): the stack attached the policy to the group once; the importer sets no policy names.
GROUP_POLICY_CALLS = ["RegisterCertificateWithoutCA", "CreateThing", "AttachThingPrincipal", "AddThingToThingGroup"]


def assert_complete_thing(aws: Aws, thing_name: str, certificate_id: str, mid: str) -> None:
    """Certificate ACTIVE, thing typed and marked, principal, policy and group attached."""
    cert = aws.certificate(certificate_id)
    assert cert["status"] == "ACTIVE"
    thing = aws.thing(thing_name)
    assert thing["thingTypeName"] == THING_TYPE
    assert thing["attributes"] == {"thingpress_manifest": mid, "thingpress_vendor": "generated",
                                   "thingpress_queued": QUEUED_AT}
    assert aws.principals(thing_name) == [cert["certificateArn"]]
    assert aws.policies(cert["certificateArn"]) == [POLICY]
    assert thing_name in aws.group_things()


def test_moto_certificate_ids_are_the_der_sha256(aws: Aws) -> None:
    pem = device_pem("Device-x")
    out = aws.iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    assert out["certificateId"] == der_sha256(pem)


def test_new_certificate_takes_exactly_five_calls(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    aws.recorder.reset()

    outcome = aws.importer().handle(msg.encode(), message_id="m-1")

    # A sixth call of any kind fails this equality.
    assert aws.recorder.calls == NEW_CERTIFICATE_CALLS
    assert (outcome.status, outcome.reason, outcome.recorded, outcome.tally.calls) == (IMPORTED, None, True, 5)
    assert outcome.certificate_id == msg.fingerprint
    assert_complete_thing(aws, "Device-1", msg.fingerprint, mid)
    row = aws.audit.get_outcome(mid, msg.fingerprint)
    assert row is not None
    assert (row["status"], row["certificate_id"], row["thing_name"], row["position"], row["attempts"]) == (
        IMPORTED, msg.fingerprint, "Device-1", 1, 1)
    summary = aws.audit.get_summary(mid)
    assert summary is not None
    assert (summary["imported"], summary["outstanding"], summary["state"]) == (1, 0, COMPLETE)


def test_new_certificate_takes_exactly_four_calls_when_the_group_carries_the_policy(
        aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    aws.recorder.reset()

    outcome = aws.importer(policy_names=()).handle(msg.encode(), message_id="m-1")

    # A fifth call of any kind (an AttachPolicy) fails this equality.
    assert aws.recorder.calls == GROUP_POLICY_CALLS
    assert (outcome.status, outcome.reason, outcome.recorded, outcome.tally.calls) == (IMPORTED, None, True, 4)
    cert = aws.certificate(msg.fingerprint)
    assert aws.principals("Device-1") == [cert["certificateArn"]]
    assert aws.policies(cert["certificateArn"]) == []  # inherited from the group when the device connects
    assert "Device-1" in aws.group_things()


def test_without_group_or_policy_only_the_needed_calls_are_made(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    aws.recorder.reset()
    aws.importer(thing_group="", policy_names=()).handle(message(mid, 1).encode(), message_id="m-1")
    assert aws.recorder.calls == ["RegisterCertificateWithoutCA", "CreateThing", "AttachThingPrincipal"]


def test_already_registered_certificate_new_thing_is_imported_in_five_calls(
        aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    aws.iot.register_certificate_without_ca(certificatePem=msg.certificate_pem, status="ACTIVE")
    aws.recorder.reset()

    outcome = aws.importer().handle(msg.encode(), message_id="m-1")

    # RegisterCertificate answers ResourceAlreadyExists; the ARN is derived, no DescribeCertificate.
    assert aws.recorder.calls == NEW_CERTIFICATE_CALLS
    assert (outcome.status, outcome.certificate_id) == (IMPORTED, msg.fingerprint)
    assert_complete_thing(aws, "Device-1", msg.fingerprint, mid)


def test_reupload_is_already_present_in_five_calls(aws: Aws, message: MessageFactory) -> None:
    first = aws.start_manifest(1, version="v1")
    aws.importer().handle(message(first, 1, pem=(pem := device_pem("Device-1"))).encode(), message_id="m-1")
    second = aws.start_manifest(1, version="v2")  # the same file uploaded again: a new manifest id
    msg = message(second, 1, pem=pem)
    aws.recorder.reset()

    outcome = aws.importer().handle(msg.encode(), message_id="m-2")

    assert aws.recorder.calls == NEW_CERTIFICATE_CALLS
    assert (outcome.status, outcome.reason, outcome.recorded) == (ALREADY_PRESENT, THING_EXISTED, True)
    # The thing is untouched: it still says which manifest created it.
    assert_complete_thing(aws, "Device-1", msg.fingerprint, first)
    summary = aws.audit.get_summary(second)
    assert summary is not None
    assert (summary["already_present"], summary["imported"], summary["state"]) == (1, 0, COMPLETE)


def test_duplicate_delivery_changes_nothing_and_calls_nothing(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    importer = aws.importer()
    importer.handle(msg.encode(), message_id="m-1")
    before = aws.audit.get_summary(mid)
    aws.recorder.reset()

    again = importer.handle(msg.encode(), message_id="m-1", receive_count=2)

    assert aws.recorder.calls == []
    assert (again.status, again.redelivery, again.recorded) == (IMPORTED, True, False)
    assert aws.audit.get_summary(mid) == before
    assert [r["sk"] for r in aws.audit.entries(mid)] == [f"C#{msg.fingerprint}"]
    assert_complete_thing(aws, "Device-1", msg.fingerprint, mid)


def test_redelivery_after_a_crash_before_recording_ends_imported(aws: Aws, message: MessageFactory) -> None:
    """The first delivery made every IoT call, then died before the audit write."""
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    importer = aws.importer()
    importer._import(msg, importer.throttle.stats, None)  # the IoT part only

    outcome = importer.handle(msg.encode(), message_id="m-1", receive_count=2)

    assert (outcome.status, outcome.reason, outcome.recorded) == (IMPORTED, None, True)
    assert_complete_thing(aws, "Device-1", msg.fingerprint, mid)
    summary = aws.audit.get_summary(mid)
    assert summary is not None and summary["imported"] == 1


def test_existing_thing_with_other_attributes_is_kept_and_attached(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    aws.iot.create_thing(thingName="Device-1", attributePayload={"attributes": {"owner": "someone-else"}})
    msg = message(mid, 1)

    outcome = aws.importer().handle(msg.encode(), message_id="m-1")

    assert (outcome.status, outcome.reason) == (IMPORTED, THING_EXISTED)
    thing = aws.thing("Device-1")
    assert thing["attributes"] == {"owner": "someone-else"}
    assert "thingTypeName" not in thing
    cert_arn = aws.certificate(msg.fingerprint)["certificateArn"]
    assert aws.principals("Device-1") == [cert_arn]
    assert aws.policies(cert_arn) == [POLICY]
    row = aws.audit.get_outcome(mid, msg.fingerprint)
    assert row is not None and (row["status"], row["reason"]) == (IMPORTED, THING_EXISTED)


def test_existing_thing_under_reject_policy_is_rejected_and_not_attached(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    aws.iot.create_thing(thingName="Device-1", attributePayload={"attributes": {"owner": "someone-else"}})
    msg = message(mid, 1)
    aws.recorder.reset()

    outcome = aws.importer(existing_thing="reject").handle(msg.encode(), message_id="m-1")

    assert aws.recorder.calls == ["RegisterCertificateWithoutCA", "CreateThing"]
    assert outcome.status == REJECTED
    assert outcome.reason == (f"THING_EXISTED: thing 'Device-1' exists with other attributes or type and the "
                              f"existing-thing policy is 'reject'; certificate {msg.fingerprint} is registered "
                              "but not attached")
    assert aws.principals("Device-1") == []
    summary = aws.audit.get_summary(mid)
    assert summary is not None and (summary["rejected"], summary["state"]) == (1, COMPLETE)


def test_throttling_burst_is_absorbed(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    flaky = FlakyIot(aws.iot, "RegisterCertificateWithoutCA", times=3)
    aws.recorder.reset()

    outcome = aws.importer(iot=flaky).handle(msg.encode(), message_id="m-1")

    assert flaky.raised == 3
    assert (outcome.status, outcome.tally.throttled, outcome.tally.calls) == (IMPORTED, 3, 8)
    assert aws.recorder.calls == NEW_CERTIFICATE_CALLS  # the throttled attempts never reached IoT
    assert len(aws.sleeps) == 3  # one backoff per throttled answer (token waits are 0 here)
    assert_complete_thing(aws, "Device-1", msg.fingerprint, mid)


def test_throttling_beyond_the_retries_fails_the_record_without_an_outcome(
        aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    flaky = FlakyIot(aws.iot, "AttachPolicy", times=-1)

    with pytest.raises(RetryLater) as caught:
        aws.importer(iot=flaky).handle(msg.encode(), message_id="m-1", receive_count=1)

    assert caught.value.reason == "ThrottlingException: Rate exceeded"
    assert (caught.value.final, caught.value.recorded, caught.value.tally.throttled) == (False, False, 5)
    assert aws.audit.get_outcome(mid, msg.fingerprint) is None
    summary = aws.audit.get_summary(mid)
    assert summary is not None and (summary["outstanding"], summary["state"]) == (1, "QUEUED")


def test_final_attempt_records_failed_with_the_last_error(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    flaky = FlakyIot(aws.iot, "CreateThing", times=-1, error_code="ServiceUnavailableException", status=503)

    with pytest.raises(RetryLater) as caught:
        aws.importer(iot=flaky).handle(msg.encode(), message_id="m-1", receive_count=3)

    assert (caught.value.final, caught.value.recorded) == (True, True)
    row = aws.audit.get_outcome(mid, msg.fingerprint)
    assert row is not None
    assert (row["status"], row["reason"], row["attempts"]) == (
        FAILED, "after 3 deliveries: ServiceUnavailableException: Rate exceeded", 3)
    summary = aws.audit.get_summary(mid)
    assert summary is not None and (summary["failed"], summary["outstanding"], summary["state"]) == (1, 0, COMPLETE)


def test_a_missing_policy_is_transient_not_a_rejection(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    with pytest.raises(RetryLater) as caught:
        aws.importer(policy_names=("no-such-policy",)).handle(msg.encode(), message_id="m-1")
    assert caught.value.reason.startswith("ResourceNotFoundException")
    assert aws.audit.get_outcome(mid, msg.fingerprint) is None


def test_deadline_too_close_starts_nothing(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    importer = aws.importer()
    aws.recorder.reset()
    with pytest.raises(RetryLater) as caught:
        importer.handle(msg.encode(), message_id="m-1", deadline=importer.throttle.deadline_after(2.0))
    assert caught.value.deadline is True
    assert aws.recorder.calls == []
    assert aws.audit.get_outcome(mid, msg.fingerprint) is None


# -- poison messages ---------------------------------------------------------------------------------------------

def _poison_cases(message: MessageFactory, mid: str) -> list[tuple[str, str]]:
    good = message(mid, 1)
    other = device_pem("Device-2")
    return [
        (json.dumps({**json.loads(good.encode()), "thing_name": "bad name!"}),
         "invalid thing name 'bad name!': AWS IoT needs 1-128 characters of letters, digits, ':', '_' or '-'"),
        (json.dumps({**json.loads(good.encode()), "certificate_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n"
                                                                   "-----END CERTIFICATE-----\n"}),
         "certificate_pem is not a PEM X.509 certificate: "),
        (json.dumps({**json.loads(good.encode()), "certificate_pem": other}),
         f"fingerprint mismatch: message says {good.fingerprint}, the certificate's DER hashes to {der_sha256(other)}"),
        (json.dumps({**json.loads(good.encode()), "certificate_pem": good.certificate_pem + other}),
         "certificate_pem holds 2 PEM certificates, expected exactly 1"),
        (json.dumps({**json.loads(good.encode()), "position": "one"}),
         "invalid import message: message field 'position' must be int, got str"),
        # cryptography raises InvalidVersion (not a ValueError) for an X.509 version it does not know.
        (json.dumps({**json.loads(good.encode()), "certificate_pem": _with_x509_version(good.certificate_pem, 10)}),
         "certificate_pem is not a PEM X.509 certificate: 10 is not a valid X509 version"),
    ]


def _with_x509_version(pem: str, version: int) -> str:
    """The certificate with its TBS version field (v3 = 2) set to ``version``; the signature no longer matters."""
    import base64

    der = base64.b64decode("".join(pem.strip().splitlines()[1:-1]))
    assert der.count(b"\xa0\x03\x02\x01\x02") == 1
    der = der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01" + bytes([version]))
    body = base64.b64encode(der).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "\n".join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----"]) + "\n"


@pytest.mark.parametrize("case", range(6))
def test_poison_message_is_rejected_with_its_reason(aws: Aws, message: MessageFactory, case: int) -> None:
    mid = aws.start_manifest(1)
    body, reason = _poison_cases(message, mid)[case]
    fingerprint = json.loads(body)["fingerprint"]
    aws.recorder.reset()

    outcome = aws.importer().handle(body, message_id="m-1")

    assert aws.recorder.calls == []
    assert outcome.status == REJECTED and outcome.recorded
    assert outcome.reason is not None and outcome.reason.startswith(reason)
    if not reason.endswith(": "):
        assert outcome.reason == reason
    row = aws.audit.get_outcome(mid, fingerprint)
    assert row is not None and (row["status"], row["reason"]) == (REJECTED, outcome.reason)
    summary = aws.audit.get_summary(mid)
    assert summary is not None and (summary["rejected"], summary["state"]) == (1, COMPLETE)


@pytest.mark.parametrize(("body", "reason"), [
    ("not json", "invalid import message: message body is not JSON: Expecting value: line 1 column 1 (char 0)"),
    ('{"schema": "thingpress.import/0"}',
     "invalid import message: unsupported message schema 'thingpress.import/0', expected 'thingpress.import/1'"),
    ('["a list"]', "invalid import message: message body is not a JSON object"),
])
def test_unattributable_message_is_recorded_by_message_id(aws: Aws, body: str, reason: str) -> None:
    outcome = aws.importer().handle(body, message_id="m-7")
    assert (outcome.status, outcome.reason, outcome.manifest_id) == (REJECTED, reason, None)
    rows = aws.audit.entries(UNREADABLE_MANIFEST)
    assert [(r["sk"], r["status"], r["reason"]) for r in rows] == [("X#m-7", REJECTED, reason)]


def test_bad_schema_naming_an_unknown_manifest_does_not_invent_a_summary(aws: Aws, message: MessageFactory) -> None:
    body = json.dumps({**json.loads(message("generated-" + "0" * 20, 1).encode()), "position": 0})
    outcome = aws.importer().handle(body, message_id="m-8")
    assert outcome.manifest_id is None
    assert aws.audit.get_summary("generated-" + "0" * 20) is None
    assert [r["sk"] for r in aws.audit.entries(UNREADABLE_MANIFEST)] == ["X#m-8"]


def test_a_manifest_of_mixed_messages_completes_with_consistent_counters(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(3)
    importer = aws.importer()
    good = [message(mid, 1), message(mid, 2)]
    bad = json.dumps({**json.loads(message(mid, 3).encode()), "thing_name": "no spaces allowed"})
    for i, body in enumerate([good[0].encode(), bad, good[1].encode(), good[0].encode()]):
        importer.handle(body, message_id=f"m-{i}")
    summary = aws.audit.get_summary(mid)
    assert summary is not None
    assert (summary["imported"], summary["rejected"], summary["outstanding"], summary["state"]) == (2, 1, 0, COMPLETE)
    assert summary["imported"] + summary["already_present"] + summary["rejected"] + summary["failed"] \
        + summary["duplicates"] == summary["entries"]
    assert sorted(aws.group_things()) == ["Device-1", "Device-2"]


def test_dlq_redrive_replaces_the_failed_outcome(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    broken = FlakyIot(aws.iot, "CreateThing", times=-1, error_code="InternalFailureException", status=500)
    with pytest.raises(RetryLater):
        aws.importer(iot=broken).handle(msg.encode(), message_id="m-1", receive_count=3)

    # An operator redrives the DLQ: SQS delivers a new copy (receive count 1).
    outcome = aws.importer().handle(msg.encode(), message_id="m-9", receive_count=1)

    assert (outcome.status, outcome.recorded, outcome.redelivery) == (IMPORTED, True, False)
    assert_complete_thing(aws, "Device-1", msg.fingerprint, mid)
    row = aws.audit.get_outcome(mid, msg.fingerprint)
    assert row is not None
    assert (row["status"], row["certificate_id"], row["previous_failure"], "reason" in row) == (
        IMPORTED, msg.fingerprint, "after 3 deliveries: InternalFailureException: Rate exceeded", False)
    summary = aws.audit.get_summary(mid)
    assert summary is not None
    assert (summary["imported"], summary["failed"], summary["outstanding"], summary["state"]) == (1, 0, 0, COMPLETE)
    # And a second redrive of the same message changes nothing.
    again = aws.importer().handle(msg.encode(), message_id="m-10")
    assert (again.redelivery, again.recorded) == (True, False)
    assert aws.audit.get_summary(mid) == summary


def test_dynamodb_requests_per_delivery(aws: Aws, message: MessageFactory) -> None:
    """A first delivery writes without reading first; a known redelivery reads and stops; a duplicate copy
    (first delivery of an already-recorded certificate) finds the row through its failed write."""
    mid = aws.start_manifest(2)
    first, second = message(mid, 1), message(mid, 2)
    ddb = CallRecorder(aws.dynamodb, "dynamodb")
    importer = aws.importer()

    importer.handle(first.encode(), message_id="m-1", complete=False)
    assert ddb.calls == ["PutItem", "TransactWriteItems"]  # the row, then its count (a one-item transaction)

    ddb.reset()
    again = importer.handle(first.encode(), message_id="m-1", receive_count=2, complete=False)
    assert ddb.calls == ["GetItem"] and (again.status, again.redelivery, again.recorded) == (IMPORTED, True, False)

    ddb.reset()
    copy = importer.handle(first.encode(), message_id="m-2", complete=False)
    assert ddb.calls == ["PutItem", "GetItem"]  # the row is there: nothing counted
    assert (copy.status, copy.redelivery, copy.recorded) == (IMPORTED, True, False)

    importer.handle(second.encode(), message_id="m-3", complete=False)
    summary = aws.audit.get_summary(mid)
    assert summary is not None and (summary["imported"], summary["outstanding"], summary["state"]) == (2, 0, QUEUED)
    ddb.reset()
    importer.complete([mid, mid])
    assert ddb.calls == ["Query", "UpdateItem"]  # summary and shards in one read, then the completion
    summary = aws.audit.get_summary(mid)
    assert summary is not None and summary["state"] == COMPLETE


# -- programming errors are not transient ----------------------------------------------------------------------


class BrokenIot:
    """IoT whose ``api`` fails with a programming error (a bug of ours, not an AWS answer)."""

    def __init__(self, client: object, api: str, error: Exception | None = None, answer: object = None):
        self.client, self.api, self.error, self.answer = client, api, error, answer

    def __getattr__(self, name: str) -> object:
        real = getattr(self.client, name)
        if name != self.api:
            return real

        def call(**kwargs: object) -> object:
            if self.error is not None:
                raise self.error
            return self.answer

        return call


@pytest.mark.parametrize(("api", "error", "answer", "reason"), [
    ("create_thing", TypeError("unsupported operand type(s) for +: 'int' and 'str'"), None,
     "internal error (not retried): TypeError: unsupported operand type(s) for +: 'int' and 'str'"),
    ("register_certificate_without_ca", None, {}, "internal error (not retried): KeyError: 'certificateId'"),
], ids=["TypeError", "KeyError"])
def test_a_programming_error_is_recorded_failed_at_once_not_retried(
        aws: Aws, message: MessageFactory, api: str, error: Exception | None, answer: object, reason: str) -> None:
    mid = aws.start_manifest(1)
    msg = message(mid, 1)

    outcome = aws.importer(iot=BrokenIot(aws.iot, api, error, answer)).handle(
        msg.encode(), message_id="m-1", receive_count=1)

    assert (outcome.status, outcome.reason, outcome.recorded) == (FAILED, reason, True)
    row = aws.audit.get_outcome(mid, msg.fingerprint)
    assert row is not None and (row["status"], row["reason"], row["attempts"]) == (FAILED, reason, 1)
    summary = aws.audit.get_summary(mid)
    assert summary is not None and (summary["failed"], summary["outstanding"], summary["state"]) == (1, 0, COMPLETE)


def test_a_network_failure_is_still_retried(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    broken = BrokenIot(aws.iot, "create_thing", ConnectionResetError("connection reset by peer"))

    with pytest.raises(RetryLater) as caught:
        aws.importer(iot=broken).handle(msg.encode(), message_id="m-1", receive_count=1)

    assert caught.value.reason == "ConnectionResetError: connection reset by peer"
    assert aws.audit.get_outcome(mid, msg.fingerprint) is None
