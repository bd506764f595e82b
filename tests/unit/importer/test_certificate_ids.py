"""The certificate id is what AWS returns, not the SHA-256 of the DER (issue 22, finding 7).

No API page says AWS IoT's certificate id is the SHA-256 of the DER. AWS returns it:
``RegisterCertificateWithoutCA`` answers ``certificateId`` and ``certificateArn``
(https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterCertificateWithoutCA.html), and its
``ResourceAlreadyExistsException`` carries ``resourceId`` and ``resourceArn`` (botocore puts them at the
top of the error response: https://docs.aws.amazon.com/botocore/latest/reference/services/iot/client/exceptions/ResourceAlreadyExistsException.html;
moto's ``register_certificate_without_ca`` raises it with the certificate's id and ARN). Here in-process
moto computes another id (``aws_ids``): everything must use the id AWS returned.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from botocore.exceptions import ClientError
from importer_helpers import Aws

from thingpress.audit.states import IMPORTED, REJECTED, ROLLED_BACK
from thingpress.throttle import Throttle
from thingpress_cli.engines import reconcile, rollback, rollback_calls


def aws_id(pem: str) -> str:
    """The id the patched moto gives a certificate: 64 hex digits, not the SHA-256 of its DER."""
    return hashlib.sha256(b"an id AWS chose: " + pem.encode()).hexdigest()


@pytest.fixture
def aws_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.iot.models import FakeCertificate

    monkeypatch.setattr(FakeCertificate, "compute_cert_id", lambda self, pem: aws_id(pem))


def undo(aws: Aws, mid: str, environment: str = "") -> rollback.Rollback:
    done = rollback.Rollback(aws.iot, aws.audit, environment=environment, policy_names=aws.settings().policy_names,
                             own_policies=aws.settings().policy_names, scope={mid}, delete=True, apply=True,
                             reason="test", throttle=Throttle(rollback_calls.ROLLBACK_TPS, sleep=lambda _s: None))
    done.manifest(mid)
    return done


def certificate_ids(aws: Aws) -> list[str]:
    return sorted(c["certificateId"] for c in aws.iot.list_certificates()["certificates"])


def check(aws: Aws, row: dict[str, Any]) -> reconcile.Drift:
    return reconcile.Reconciler(aws.iot, aws.audit, aws.settings(),
                                throttle=Throttle(aws.settings().iot_tps, sleep=lambda _s: None)).check(row)


def test_a_certificate_registered_now_is_recorded_checked_and_rolled_back_by_the_id_aws_returned(aws, message,
                                                                                              aws_ids):
    mid = aws.start_manifest(1)
    msg = message(mid)
    assert aws_id(msg.certificate_pem) != msg.fingerprint

    outcome = aws.importer().handle(msg.encode(), message_id="m1")

    row = aws.audit.get_outcome(mid, msg.fingerprint)
    assert (outcome.status, outcome.certificate_id) == (IMPORTED, aws_id(msg.certificate_pem))
    assert (row["certificate_id"], row["certificate_registered"]) == (aws_id(msg.certificate_pem), True)
    assert aws.principals(msg.thing_name) == [aws.certificate(aws_id(msg.certificate_pem))["certificateArn"]]
    assert check(aws, row).problems == []

    done = undo(aws, mid)

    assert certificate_ids(aws) == [] and aws.iot.list_things()["things"] == []
    assert (done.report.counts["certificates_deleted"], done.report.counts["things_deleted"]) == (1, 1)
    assert aws.audit.get_outcome(mid, msg.fingerprint)["status"] == ROLLED_BACK


def test_a_certificate_found_registered_takes_the_id_and_arn_of_the_already_exists_answer(aws, message, aws_ids):
    mid = aws.start_manifest(1)
    msg = message(mid)
    registered = aws.iot.register_certificate_without_ca(certificatePem=msg.certificate_pem, status="ACTIVE")
    assert registered["certificateId"] == aws_id(msg.certificate_pem)
    with pytest.raises(ClientError) as refused:  # what the importer meets: AWS's id and ARN in the answer
        aws.iot.register_certificate_without_ca(certificatePem=msg.certificate_pem, status="ACTIVE")
    assert (refused.value.response["resourceId"], refused.value.response["resourceArn"]) == (
        registered["certificateId"], registered["certificateArn"])

    outcome = aws.importer().handle(msg.encode(), message_id="m1")

    row = aws.audit.get_outcome(mid, msg.fingerprint)
    assert (outcome.status, row["certificate_id"], row["certificate_registered"], row["thing_created"]) == (
        IMPORTED, registered["certificateId"], False, True)
    assert aws.principals(msg.thing_name) == [registered["certificateArn"]]
    assert aws.policies(registered["certificateArn"]) == [aws.settings().policy_names[0]]
    assert check(aws, row).problems == []

    done = undo(aws, mid)  # found registered: not this manifest's to delete; its thing is

    assert certificate_ids(aws) == [registered["certificateId"]] and aws.iot.list_things()["things"] == []
    assert done.report.counts["principals_detached"] == 1


def test_a_certificate_refused_under_the_reject_policy_is_recorded_and_rolled_back_by_its_id(aws, message, aws_ids):
    """existing-thing policy "reject": the certificate was registered, its thing existed; the REJECTED row says
    which certificate was left registered, and rollback deletes that one."""
    mid = aws.start_manifest(1)
    msg = message(mid)
    aws.iot.create_thing(thingName=msg.thing_name)

    outcome = aws.importer(existing_thing="reject").handle(msg.encode(), message_id="m1")

    row = aws.audit.get_outcome(mid, msg.fingerprint)
    assert (outcome.status, row["certificate_id"], row["certificate_registered"]) == (
        REJECTED, aws_id(msg.certificate_pem), True)
    assert outcome.certificate_id == aws_id(msg.certificate_pem)

    undo(aws, mid)

    assert certificate_ids(aws) == []
    assert [t["thingName"] for t in aws.iot.list_things()["things"]] == [msg.thing_name]  # not ours: kept


class AlreadyExists:
    """An IoT client whose ``RegisterCertificateWithoutCA`` answers ``ResourceAlreadyExistsException`` with
    only the given fields (AWS's error shape makes ``resourceId`` and ``resourceArn`` optional)."""

    def __init__(self, iot: Any, **fields: str):
        self._iot, self._fields = iot, fields

    def register_certificate_without_ca(self, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ResourceAlreadyExistsException", "Message": "exists"},
                           "ResponseMetadata": {"HTTPStatusCode": 409}, **self._fields},
                          "RegisterCertificateWithoutCA")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._iot, name)


def test_an_answer_with_only_the_arn_gives_the_id_too(aws, message, aws_ids):
    mid = aws.start_manifest(1)
    msg = message(mid)
    arn = aws.iot.register_certificate_without_ca(certificatePem=msg.certificate_pem, status="ACTIVE")["certificateArn"]

    aws.importer(iot=AlreadyExists(aws.iot, resourceArn=arn)).handle(msg.encode(), message_id="m1")

    assert aws.audit.get_outcome(mid, msg.fingerprint)["certificate_id"] == aws_id(msg.certificate_pem)
    assert aws.principals(msg.thing_name) == [arn]


def test_an_answer_without_id_or_arn_falls_back_to_the_sha256_of_the_der(aws, message):
    """Nothing returned: the one place the SHA-256 assumption is left (moto unpatched: it holds here)."""
    mid = aws.start_manifest(1)
    msg = message(mid)
    registered = aws.iot.register_certificate_without_ca(certificatePem=msg.certificate_pem, status="ACTIVE")
    assert registered["certificateId"] == msg.fingerprint

    aws.importer(iot=AlreadyExists(aws.iot)).handle(msg.encode(), message_id="m1")

    assert aws.audit.get_outcome(mid, msg.fingerprint)["certificate_id"] == msg.fingerprint
    assert aws.principals(msg.thing_name) == [registered["certificateArn"]]  # the ARN built from it
