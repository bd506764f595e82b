"""The provider runtime against moto: messages, summary counts, refusals, redelivery, resumption."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from aws_fixtures import FakeContext, drain_queue, put_and_event
from events import S3_TEST_EVENT, sqs_event
from provider_helpers import generated_manifest

from thingpress import messages
from thingpress.audit.keys import manifest_id
from thingpress.audit.states import COMPLETE, QUEUED, REFUSED, REJECTED
from thingpress.audit.summaries import Progress
from thingpress.certs import load_certificate
from thingpress.provider.queue_messages import CONTINUE_SCHEMA
from thingpress.provider.runtime import Tuning

KEY = "generated/batch-1.txt"


def fingerprint(pem: bytes) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(load_certificate(pem).public_bytes(Encoding.DER)).hexdigest()


def run(aws: Any, provider: Any, *bodies: Any, context: Any = None) -> dict[str, Any]:
    return provider.handle(sqs_event(*bodies), context or FakeContext())


def imports(aws: Any) -> list[messages.ImportMessage]:
    return [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]


def mid_of(event: dict[str, Any]) -> str:
    obj = event["Records"][0]["s3"]["object"]
    return manifest_id("generated", "manifests", KEY, obj["versionId"])


def continuations(aws: Any) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in drain_queue(aws.sqs, aws.manifest_queue)]


def test_one_message_per_accepted_certificate_with_the_exact_schema(aws, pems):
    body = generated_manifest(pems[:12])
    event = put_and_event(aws.s3, aws.bucket, KEY, body)

    response = run(aws, aws.provider(), event)

    assert response == {"batchItemFailures": []}
    sent = imports(aws)
    mid = mid_of(event)
    summary = aws.audit.get_summary(mid)
    assert sorted(m.position for m in sent) == list(range(1, 13))
    by_position = {m.position: m for m in sent}
    for i, pem in enumerate(pems[:12], start=1):
        m = by_position[i]
        assert m.schema == "thingpress.import/1"
        assert m.manifest_id == mid and m.vendor == "generated"
        assert m.thing_name == f"Device-{i - 1}"
        assert m.certificate_pem.strip() == pem.decode().strip()
        assert m.fingerprint == fingerprint(pem)
        assert m.queued_at == summary["started_at"]
    assert summary["state"] == QUEUED  # 12 certificates outstanding at the importer
    assert (summary["entries"], summary["queued"], summary["rejected"], summary["duplicates"]) == (12, 12, 0, 0)
    assert summary["outstanding"] == 12 and summary["checkpoint"] == 12 and summary["parse_done"] is True
    assert summary["sha256"] == hashlib.sha256(body).hexdigest()
    assert (summary["bucket"], summary["key"], summary["vendor"]) == ("manifests", KEY, "generated")
    assert summary["version_id"] == event["Records"][0]["s3"]["object"]["versionId"]
    assert summary["etag"] == event["Records"][0]["s3"]["object"]["eTag"]
    assert summary["started_at"] <= summary["parsed_at"]


def test_environment_prefix_goes_before_every_thing_name_and_the_summary_names_the_environment(aws, pems):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:3]))

    run(aws, aws.provider(environment="pr7", thing_prefix="pr7-"), event)

    assert sorted(m.thing_name for m in imports(aws)) == ["pr7-Device-0", "pr7-Device-1", "pr7-Device-2"]
    assert aws.audit.get_summary(mid_of(event))["environment"] == "pr7"


def test_the_message_body_is_compact_json_with_the_pem_as_text(aws, pems):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:1]))
    run(aws, aws.provider(), event)
    [raw] = drain_queue(aws.sqs, aws.import_queue)
    data = json.loads(raw["Body"])
    assert sorted(data) == ["certificate_pem", "fingerprint", "manifest_id", "position", "queued_at",
                            "schema", "thing_name", "vendor"]
    assert data["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----\n")
    assert "b'" not in raw["Body"]


def test_duplicates_are_queued_once_and_counted(aws, pems):
    body = generated_manifest([pems[0], pems[1], pems[0], pems[2], pems[1], pems[0]])
    event = put_and_event(aws.s3, aws.bucket, KEY, body)

    run(aws, aws.provider(), event)

    sent = imports(aws)
    assert sorted(m.position for m in sent) == [1, 2, 4]
    summary = aws.audit.get_summary(mid_of(event))
    assert (summary["entries"], summary["queued"], summary["duplicates"], summary["rejected"]) == (6, 3, 3, 0)
    assert summary["outstanding"] == 3


def test_refused_entries_get_rows_with_their_reason_and_the_rest_is_imported(aws, pems):
    body = generated_manifest([pems[0], b"%%% not base64 %%%", pems[1], b"aGVsbG8gd29ybGQ="])
    event = put_and_event(aws.s3, aws.bucket, KEY, body)

    run(aws, aws.provider(), event)

    assert sorted(m.position for m in imports(aws)) == [1, 3]
    mid = mid_of(event)
    rows = {r["sk"]: r for r in aws.audit.entries(mid)}
    assert set(rows) == {"R#000000002", "R#000000004"}
    assert rows["R#000000002"]["reason"] == "line 2: not standard base64"
    assert rows["R#000000004"]["reason"] == "line 4: base64 does not decode to a PEM certificate"
    assert all(r["status"] == REJECTED for r in rows.values())
    summary = aws.audit.get_summary(mid)
    assert (summary["entries"], summary["queued"], summary["rejected"]) == (4, 2, 2)


def test_all_entries_refused_completes_the_manifest(aws):
    event = put_and_event(aws.s3, aws.bucket, KEY, b"aGVsbG8=\naGVsbG8=\n")
    run(aws, aws.provider(), event)
    summary = aws.audit.get_summary(mid_of(event))
    assert summary["state"] == COMPLETE
    assert (summary["entries"], summary["queued"], summary["rejected"], summary["outstanding"]) == (2, 0, 2, 0)


@pytest.mark.parametrize(("key", "body", "reason"), [
    ("generated/batch-1.csv", b"MAC,cn,cert\n",
     "s3://manifests/generated/batch-1.csv{v}: not a generated manifest: the generated provider expects a "
     "'.txt' object (that suffix is the espressif provider's)"),
    ("generated/batch-1.bin", b"whatever",
     "s3://manifests/generated/batch-1.bin{v}: not a generated manifest: the generated provider expects a "
     "'.txt' object"),
    ("generated/empty.txt", b"",
     "s3://manifests/generated/empty.txt{v}: generated manifest is empty: expected one standard-base64 PEM "
     "certificate per line"),
    ("generated/blob.txt", bytes(range(256)) * 4,
     "s3://manifests/generated/blob.txt{v}: not a generated manifest: expected one standard-base64 PEM "
     "certificate per line, line 1 is not base64 text"),
], ids=["wrong-suffix", "unknown-suffix", "empty", "binary"])
def test_a_file_refused_as_a_whole_is_audited_and_not_retried(aws, key, body, reason, caplog):
    event = put_and_event(aws.s3, aws.bucket, key, body)
    version = event["Records"][0]["s3"]["object"]["versionId"]

    response = run(aws, aws.provider(), event)

    assert response == {"batchItemFailures": []}  # acknowledged: never retried
    assert imports(aws) == []
    mid = manifest_id("generated", "manifests", key, version)
    summary = aws.audit.get_summary(mid)
    assert summary["state"] == REFUSED
    assert summary["reason"] == reason.format(v=f" (version {version})")
    # a second delivery changes nothing
    assert run(aws, aws.provider(), event) == {"batchItemFailures": []}
    assert aws.audit.get_summary(mid)["reason"] == summary["reason"]


def test_the_s3_test_event_is_ignored(aws):
    response = run(aws, aws.provider(), S3_TEST_EVENT)
    assert response == {"batchItemFailures": []}
    assert aws.dynamodb.scan(TableName=aws.audit.table)["Count"] == 0
    assert imports(aws) == []


def test_an_unreadable_queue_message_is_recorded_and_acknowledged(aws, pems):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:2]))
    response = run(aws, aws.provider(), "not json", event)
    assert response == {"batchItemFailures": []}
    row = aws.dynamodb.get_item(TableName=aws.audit.table,
                                Key={"pk": {"S": "M#_unreadable"}, "sk": {"S": "X#m-0"}})["Item"]
    assert row["reason"]["S"].startswith("manifest queue message: message body is not JSON")
    assert len(imports(aws)) == 2  # the other message of the batch is handled


def test_a_url_encoded_key_is_decoded(aws, pems):
    key = "generated/my batch+1.txt"
    event = put_and_event(aws.s3, aws.bucket, key, generated_manifest(pems[:2]))
    assert event["Records"][0]["s3"]["object"]["key"] == "generated%2Fmy+batch%2B1.txt"
    run(aws, aws.provider(), event)
    assert len(imports(aws)) == 2


def test_redelivery_of_the_same_event_does_nothing(aws, pems):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:5]))
    provider = aws.provider()
    run(aws, provider, event)
    assert len(imports(aws)) == 5
    before = aws.audit.get_summary(mid_of(event))

    assert run(aws, provider, event) == {"batchItemFailures": []}

    assert imports(aws) == []
    after = aws.audit.get_summary(mid_of(event))
    assert {k: after[k] for k in ("entries", "queued", "checkpoint", "updated_at")} == \
        {k: before[k] for k in ("entries", "queued", "checkpoint", "updated_at")}


def test_a_new_version_of_the_same_key_is_a_new_manifest(aws, pems):
    first = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:3]))
    second = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[3:5]))
    provider = aws.provider()
    run(aws, provider, first)
    run(aws, provider, second)
    assert mid_of(first) != mid_of(second)
    assert aws.audit.get_summary(mid_of(first))["queued"] == 3
    assert aws.audit.get_summary(mid_of(second))["queued"] == 2


def test_an_unversioned_object_is_read_by_etag(aws, pems):
    aws.s3.create_bucket(Bucket="plain")
    body = generated_manifest(pems[:3])
    etag = aws.s3.put_object(Bucket="plain", Key=KEY, Body=body)["ETag"].strip('"')
    from events import s3_event

    run(aws, aws.provider(), s3_event("plain", KEY, etag=etag, size=len(body)))
    summary = aws.audit.get_summary(manifest_id("generated", "plain", KEY, etag))
    assert summary["queued"] == 3 and summary["etag"] == etag and "version_id" not in summary


def test_an_object_deleted_before_it_is_read_is_refused(aws, pems):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:3]))
    version = event["Records"][0]["s3"]["object"]["versionId"]
    aws.s3.delete_object(Bucket=aws.bucket, Key=KEY, VersionId=version)
    assert run(aws, aws.provider(), event) == {"batchItemFailures": []}
    summary = aws.audit.get_summary(mid_of(event))
    assert summary["state"] == REFUSED
    assert summary["reason"].endswith(": the object no longer exists")


class _S3Answering:
    """The real (moto) S3 client, except that GetObject answers one S3 error code."""

    def __init__(self, s3: Any, code: str) -> None:
        self._s3, self._code = s3, code

    def get_object(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": self._code, "Message": self._code}}, "GetObject")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


@pytest.mark.parametrize(("code", "reason"), [
    ("AccessDenied", "access denied reading the object (AccessDenied): it is missing, or the provider may not read it"),
    ("NoSuchKey", "the object no longer exists"),
    ("NoSuchVersion", "the object no longer exists"),
])
def test_an_object_s3_will_not_return_is_refused_with_the_reason_and_not_retried(aws, pems, code, reason):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:3]))
    provider = aws.provider(s3=_S3Answering(aws.s3, code))

    assert run(aws, provider, event) == {"batchItemFailures": []}  # no retry

    summary = aws.audit.get_summary(mid_of(event))
    assert summary["state"] == REFUSED
    assert summary["reason"].endswith(f": {reason}")
    assert imports(aws) == []


# -- resumption and chunking -------------------------------------------------------


def test_resumes_after_a_simulated_timeout_without_sending_twice(aws, pems):
    """The first invocation runs short of time after a few entries; a continuation finishes."""
    body = generated_manifest(pems[:30])
    event = put_and_event(aws.s3, aws.bucket, KEY, body)
    provider = aws.provider(tuning=Tuning(checkpoint_every=4))
    # 60 s at start -> 10 s safety margin; plenty after entries 1-11, 5 s left after entry 12.
    context = FakeContext(remaining_ms=[60_000] + [50_000] * 11 + [5_000])

    assert run(aws, provider, event, context=context) == {"batchItemFailures": []}

    first = imports(aws)
    assert sorted(m.position for m in first) == list(range(1, 13))
    mid = mid_of(event)
    summary = aws.audit.get_summary(mid)
    assert (summary["checkpoint"], summary["entries"], summary["queued"], summary["parse_done"]) == (12, 12, 12, False)
    [cont] = continuations(aws)
    assert len(cont["link"]) == 32  # the next link of the chain: a fresh token (thingpress.provider)
    assert {k: v for k, v in cont.items() if k != "link"} == {"schema": CONTINUE_SCHEMA, "manifest_id": mid, "vendor": "generated", "bucket": "manifests",
                    "key": KEY, "version_id": event["Records"][0]["s3"]["object"]["versionId"],
                    "etag": event["Records"][0]["s3"]["object"]["eTag"], "chain": 0}

    assert run(aws, provider, cont) == {"batchItemFailures": []}

    second = imports(aws)
    assert sorted(m.position for m in second) == list(range(13, 31))
    summary = aws.audit.get_summary(mid)
    assert (summary["entries"], summary["queued"], summary["outstanding"], summary["parse_done"]) == (30, 30, 30, True)
    assert summary["sha256"] == hashlib.sha256(body).hexdigest()
    assert continuations(aws) == []
    assert len({m.fingerprint for m in first + second}) == 30


def test_duplicates_across_a_chunk_boundary_are_still_detected(aws, pems):
    body = generated_manifest(pems[:5] + pems[:5])
    event = put_and_event(aws.s3, aws.bucket, KEY, body)
    provider = aws.provider(tuning=Tuning(max_entries_per_invocation=4))
    pending: list[Any] = [event]
    invocations = 0
    while pending:
        invocations += 1
        run(aws, provider, pending.pop())
        pending.extend(continuations(aws))
    assert invocations == 3
    assert sorted(m.position for m in imports(aws)) == [1, 2, 3, 4, 5]
    summary = aws.audit.get_summary(mid_of(event))
    assert (summary["entries"], summary["queued"], summary["duplicates"]) == (10, 5, 5)


def test_a_manifest_larger_than_the_per_invocation_maximum_is_chunked(aws, pems):
    body = generated_manifest(pems[:40])
    event = put_and_event(aws.s3, aws.bucket, KEY, body)
    provider = aws.provider(tuning=Tuning(checkpoint_every=6), provider_max_entries=15)  # the setting
    results = []
    pending: list[Any] = [event]
    while pending:
        body_ = pending.pop()
        results.append(provider.handle_record(_record(body_), FakeContext()))
        pending.extend(continuations(aws))
    assert [r[0].outcome for r in results] == ["chunked", "chunked", "complete"]
    assert [r[0].entries for r in results] == [15, 15, 10]
    sent = imports(aws)
    assert sorted(m.position for m in sent) == list(range(1, 41))
    summary = aws.audit.get_summary(mid_of(event))
    assert (summary["entries"], summary["queued"], summary["checkpoint"], summary["parse_done"]) == (40, 40, 40, True)


def test_a_crash_resumes_from_the_last_checkpoint_on_redelivery(aws, pems):
    """SQS dies mid-manifest: the message fails, redelivery resumes from the checkpoint."""
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:25]))
    flaky = FlakySqs(aws.sqs, crash_on_call=3)  # calls 1-2 (20 messages) succeed, then it breaks
    provider = aws.provider(sqs=flaky, tuning=Tuning(checkpoint_every=10))

    response = run(aws, provider, event)

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert len(imports(aws)) == 20
    summary = aws.audit.get_summary(mid_of(event))
    assert (summary["checkpoint"], summary["queued"]) == (20, 20)

    assert run(aws, aws.provider(tuning=Tuning(checkpoint_every=10)), event) == {"batchItemFailures": []}

    assert sorted(m.position for m in imports(aws)) == list(range(21, 26))
    summary = aws.audit.get_summary(mid_of(event))
    assert (summary["entries"], summary["queued"], summary["parse_done"]) == (25, 25, True)


@pytest.mark.parametrize("other", [1, 4], ids=["other-behind-this-position", "other-ahead"])
def test_an_invocation_overtaken_by_another_stops_quietly_without_double_counting(aws, pems, monkeypatch, other):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:6]))
    provider = aws.provider(tuning=Tuning(checkpoint_every=2))
    mid = mid_of(event)
    real = provider.audit.checkpoint

    def raced(m: str, position: int, progress: Progress, **kw: Any) -> bool:
        # another invocation commits up to `other` just before this one's first checkpoint (at 2)
        if not raced.done:
            raced.done = True
            assert real(m, other, Progress(entries=other, queued=other), previous=0)
        return real(m, position, progress, **kw)

    raced.done = False
    monkeypatch.setattr(provider.audit, "checkpoint", raced)

    [result] = provider.handle_record(_record(event), FakeContext())

    assert result.outcome == "behind" and result.entries == 0
    summary = aws.audit.get_summary(mid)
    assert (summary["checkpoint"], summary["entries"], summary["queued"]) == (other, other, other)
    # The behind invocation sends nothing: the one ahead carries the manifest on (one live chain;
    # test_provider_interleavings covers a holder that dies).
    assert continuations(aws) == []


def test_checkpoint_with_previous_refuses_a_stale_or_finished_base(aws):
    mid = "generated-" + "0" * 20
    aws.audit.start_manifest(mid, vendor="generated", bucket="b", key="k", version="v", etag=None, size=1)
    assert aws.audit.checkpoint(mid, 3, Progress(entries=3, queued=3), previous=0)
    assert not aws.audit.checkpoint(mid, 5, Progress(entries=5, queued=5), previous=0)  # stale base
    assert aws.audit.checkpoint(mid, 5, Progress(entries=2, queued=2), previous=3)
    assert aws.audit.checkpoint(mid, 5, Progress(), previous=5, parse_done=True)  # final, nothing new
    assert not aws.audit.checkpoint(mid, 5, Progress(), previous=5, parse_done=True)  # only once
    summary = aws.audit.get_summary(mid)
    assert (summary["checkpoint"], summary["entries"], summary["queued"], summary["parse_done"]) == (5, 5, 5, True)


# -- SendMessageBatch failures ------------------------------------------------------


class FlakySqs:
    """Wraps a real (moto) SQS client: fails given entries once, or crashes on a given call."""

    def __init__(self, real: Any, *, fail_ids_once: set[str] = frozenset(), always_fail: set[str] = frozenset(),
                 crash_on_call: int | None = None):
        self.real = real
        self.fail_once = set(fail_ids_once)
        self.always_fail = set(always_fail)
        self.crash_on_call = crash_on_call
        self.calls: list[list[str]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append([e["Id"] for e in Entries])
        if self.crash_on_call is not None and len(self.calls) >= self.crash_on_call:
            raise ConnectionError("SQS endpoint unreachable")
        failing = {e["Id"] for e in Entries if e["Id"] in self.fail_once | self.always_fail}
        self.fail_once -= failing
        ok = [e for e in Entries if e["Id"] not in failing]
        out = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=ok) if ok else {"Successful": []}
        out["Failed"] = [{"Id": i, "SenderFault": False, "Code": "InternalError", "Message": "try again"}
                         for i in sorted(failing)]
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_failed_batch_entries_are_retried_alone(aws, pems):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:12]))
    flaky = FlakySqs(aws.sqs, fail_ids_once={"3", "7", "11"})

    assert run(aws, aws.provider(sqs=flaky), event) == {"batchItemFailures": []}

    assert flaky.calls == [[str(i) for i in range(1, 11)], ["3", "7"], ["11", "12"], ["11"]]
    assert sorted(m.position for m in imports(aws)) == list(range(1, 13))
    assert aws.audit.get_summary(mid_of(event))["queued"] == 12


def test_a_message_sqs_keeps_refusing_fails_the_record_without_losing_progress(aws, pems):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:12]))
    flaky = FlakySqs(aws.sqs, always_fail={"12"})
    provider = aws.provider(sqs=flaky, tuning=Tuning(checkpoint_every=10, send_attempts=3))

    response = run(aws, provider, event)

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert flaky.calls[-3:] == [["11", "12"], ["12"], ["12"]]
    summary = aws.audit.get_summary(mid_of(event))
    assert (summary["checkpoint"], summary["queued"], summary["parse_done"]) == (10, 10, False)


def _record(body: Any) -> Any:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    return SQSRecord(sqs_event(body)["Records"][0])
