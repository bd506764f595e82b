"""The provider's adapters on moto: chunks resume from the stored cursor with a ranged GET
(the prefix is never read again), old checkpoints without a cursor still resume right, and
duplicates are found through the audit table's claims."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import factories as f
import pytest
from aws_fixtures import FakeContext, drain_queue, put_and_event
from events import sqs_event
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.serialization import Encoding
from provider_helpers import generated_manifest

from thingpress import messages
from thingpress.audit.claims import PARSING_TIME
from thingpress.audit.keys import claims_pk, from_item, manifest_id, manifest_pk, now_iso, parse_stamp, to_item
from thingpress.audit.states import REFUSED
from thingpress.provider.runtime import Tuning


class RecordingS3:
    """The real (moto) client; records every GetObject's arguments and the bytes handed out."""

    def __init__(self, real: Any):
        self.real = real
        self.gets: list[dict[str, Any]] = []
        self.bytes_read = 0

    def get_object(self, **kwargs: Any) -> Any:
        self.gets.append(kwargs)
        out = self.real.get_object(**kwargs)
        body, recorder = out["Body"], self

        class Counted:
            def read(self, n: int = -1) -> bytes:
                data = body.read(n)
                recorder.bytes_read += len(data)
                return data

            def __enter__(self) -> Counted:
                return self

            def __exit__(self, *exc: object) -> None:
                body.close()

        return {**out, "Body": Counted()}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def imports(aws: Any) -> list[messages.ImportMessage]:
    return [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]


def continuations(aws: Any) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in drain_queue(aws.sqs, aws.manifest_queue)]


def mid_of(vendor: str, event: dict[str, Any]) -> str:
    obj = event["Records"][0]["s3"]["object"]
    return manifest_id(vendor, event["Records"][0]["s3"]["bucket"]["name"], unquote_plus(obj["key"]),
                             obj["versionId"])


def run_to_the_end(aws: Any, provider: Any, event: dict[str, Any]) -> int:
    """Run the event and every continuation it leads to; return the number of invocations."""
    pending: list[Any] = [event]
    invocations = 0
    while pending:
        invocations += 1
        assert provider.handle(sqs_event(pending.pop()), FakeContext()) == {"batchItemFailures": []}
        pending.extend(continuations(aws))
    return invocations


def test_a_continuation_reads_from_the_cursor_with_a_ranged_get_never_the_prefix(aws, pems):
    body = generated_manifest(pems[:25])
    event = put_and_event(aws.s3, aws.bucket, "generated/big.txt", body)
    s3 = RecordingS3(aws.s3)
    provider = aws.provider(s3=s3, tuning=Tuning(max_entries_per_invocation=10, checkpoint_every=4))

    assert run_to_the_end(aws, provider, event) == 3

    ends = [i + 1 for i, byte in enumerate(body) if byte == ord("\n")]
    ranges = [g.get("Range") for g in s3.gets]
    # chunk 1 from the top; chunks 2 and 3 from the byte after line 10 and 20; one more full read
    # at the end for the whole object's SHA-256 (the last chunk saw only its tail)
    assert ranges == [None, f"bytes={ends[9]}-", f"bytes={ends[19]}-", None]
    assert s3.bytes_read == len(body) + (len(body) - ends[9]) + (len(body) - ends[19]) + len(body)
    assert sorted(m.position for m in imports(aws)) == list(range(1, 26))
    summary = aws.audit.get_summary(mid_of("generated", event))
    assert (summary["entries"], summary["queued"], summary["parse_done"]) == (25, 25, True)
    assert summary["cursor"] == {"offset": len(body), "line": 25}
    assert summary["sha256"] == hashlib.sha256(body).hexdigest()


@pytest.fixture
def signer(aws: Any) -> f.MicrochipSigner:
    signer = f.microchip_signer()
    aws.s3.create_bucket(Bucket="signers")
    aws.s3.put_object(Bucket="signers", Key="microchip/test-signer.crt", Body=signer.certificate.public_bytes(Encoding.PEM))
    return signer


def test_a_microchip_manifest_in_chunks_verifies_each_entry_once(aws, signer, monkeypatch):
    from thingpress.vendors import microchip

    verified: list[int] = []
    real = microchip._verified_entry
    monkeypatch.setattr(microchip, "_verified_entry",
                        lambda position, *a, **k: verified.append(position) or real(position, *a, **k))
    devs = f.devices(9)
    entries = [f.microchip_entry(signer, f.microchip_unique_id(i), d) for i, d in enumerate(devs)]
    entries.insert(5, entries[1])  # a duplicate across the chunk boundary
    event = put_and_event(aws.s3, aws.bucket, "microchip/big.json", f.microchip_manifest(entries))
    provider = aws.provider("microchip", microchip_signers="s3://signers/microchip/",
                            tuning=Tuning(max_entries_per_invocation=4, checkpoint_every=3))

    assert run_to_the_end(aws, provider, event) == 3

    assert verified == list(range(1, 11))  # never again on resume
    assert sorted(m.position for m in imports(aws)) == [1, 2, 3, 4, 5, 7, 8, 9, 10]
    summary = aws.audit.get_summary(mid_of("microchip", event))
    assert (summary["entries"], summary["queued"], summary["duplicates"], summary["rejected"]) == (10, 9, 1, 0)


def test_an_espressif_manifest_in_chunks_keeps_its_header_and_row_numbers(aws):
    devs = f.devices(7)
    rows = f.espressif_rows(devs)
    rows[5] = (rows[5][0], "wrong-cn", rows[5][2])
    event = put_and_event(aws.s3, aws.bucket, "espressif/big.csv", f.espressif_manifest(rows))
    provider = aws.provider("espressif", tuning=Tuning(max_entries_per_invocation=3))

    assert run_to_the_end(aws, provider, event) == 3

    assert sorted(m.position for m in imports(aws)) == [1, 2, 3, 4, 5, 7]
    mid = mid_of("espressif", event)
    [row] = [r for r in aws.audit.entries(mid) if r["sk"].startswith("R#")]
    assert row["reason"].startswith(f"row 6 (MAC {rows[5][0]}): cn 'wrong-cn' differs")
    assert aws.audit.get_summary(mid)["entries"] == 7


def test_an_old_checkpoint_without_a_cursor_resumes_by_position_and_still_finds_duplicates(aws, pems):
    body = generated_manifest(pems[:6] + pems[:3])
    event = put_and_event(aws.s3, aws.bucket, "generated/old.txt", body)
    provider = aws.provider(tuning=Tuning(max_entries_per_invocation=5))
    provider.handle(sqs_event(event), FakeContext())
    [cont] = continuations(aws)
    mid = mid_of("generated", event)
    # as an earlier release left it: a checkpoint at 5, no cursor, no claims
    aws.dynamodb.update_item(TableName=aws.audit.table, Key=to_item({"pk": manifest_pk(mid), "sk": "#SUMMARY"}),
                             UpdateExpression="REMOVE #c", ExpressionAttributeNames={"#c": "cursor"})
    for item in aws.dynamodb.scan(TableName=aws.audit.table)["Items"]:
        if item["pk"]["S"] == claims_pk(mid):
            aws.dynamodb.delete_item(TableName=aws.audit.table, Key={"pk": item["pk"], "sk": item["sk"]})

    assert run_to_the_end(aws, provider, cont) == 1

    assert sorted(m.position for m in imports(aws)) == [1, 2, 3, 4, 5, 6]
    summary = aws.audit.get_summary(mid)
    assert (summary["entries"], summary["queued"], summary["duplicates"], summary["parse_done"]) == (9, 6, 3, True)
    assert summary["sha256"] == hashlib.sha256(body).hexdigest()


def test_claims_expire_with_the_parse_and_a_manifest_still_parsing_past_its_time_is_refused_from_its_checkpoint(
        aws, pems):
    """Claims expire ``CLAIMS_LIFETIME`` (16 days) after the manifest's start, all at one instant, not with the
    year-long retention of the rows; a continuation that comes more than ``PARSING_TIME`` (15 days) after the
    start parses nothing more (its claims could be gone by the time it is done): the manifest is refused from
    its checkpoint on, with the reason, and what was queued before stays queued."""
    body = generated_manifest(pems[:8])
    event = put_and_event(aws.s3, aws.bucket, "generated/slow.txt", body)
    provider = aws.provider(tuning=Tuning(max_entries_per_invocation=5))
    provider.handle(sqs_event(event), FakeContext())
    [cont] = continuations(aws)
    mid = mid_of("generated", event)
    summary = aws.audit.get_summary(mid)
    claims = [from_item(i) for i in aws.dynamodb.scan(TableName=aws.audit.table)["Items"] if i["pk"]["S"] == claims_pk(mid)]
    started = parse_stamp(summary["started_at"])
    assert len(claims) == 5 and {c["expires_at"] for c in claims} == {int((started + timedelta(days=16)).timestamp())}
    assert summary["expires_at"] > started.timestamp() + 360 * 86400  # the summary and rows keep the retention

    long_ago = now_iso(datetime.now(UTC) - PARSING_TIME - timedelta(minutes=1))
    aws.dynamodb.update_item(TableName=aws.audit.table, Key=to_item({"pk": manifest_pk(mid), "sk": "#SUMMARY"}),
                             UpdateExpression="SET started_at = :s", ExpressionAttributeValues=to_item({":s": long_ago}))
    assert run_to_the_end(aws, provider, cont) == 1

    assert sorted(m.position for m in imports(aws)) == [1, 2, 3, 4, 5]
    summary = aws.audit.get_summary(mid)
    assert (summary["state"], summary["entries"], summary["queued"]) == (REFUSED, 5, 5)
    assert summary["reason"].split(": ", 1)[1] == (
        f"parsing did not finish within 15 days of the manifest's start "
        f"({long_ago}): its certificate claims (the duplicate detection) expire 16 days after it, so the entries "
        "from position 6 on are not imported. Upload the manifest again (a new object version is a new manifest; its "
        "certificates imported already are found ALREADY_PRESENT)")


def test_an_infineon_reel_is_extracted_once_into_a_staged_object_that_later_chunks_read(aws, monkeypatch):
    from thingpress.provider.staging import staging_key
    from thingpress.vendors import infineon

    extractions: list[int] = []
    real = infineon._inner_archive
    monkeypatch.setattr(infineon, "_inner_archive", lambda *a: extractions.append(1) or real(*a))
    devs = f.devices(6)
    reel = f.infineon_reel({"E0E0": devs + devs[:2], "E0E1": devs[:1], "E0E2": devs[:1]})
    event = put_and_event(aws.s3, aws.bucket, "infineon/reel.7z", reel)
    s3 = RecordingS3(aws.s3)
    provider = aws.provider("infineon", s3=s3, tuning=Tuning(max_entries_per_invocation=3))

    assert run_to_the_end(aws, provider, event) == 3

    assert extractions == [1]  # once, not once per chunk
    mid = mid_of("infineon", event)
    staged = staging_key(mid)
    assert [(g["Key"], g.get("Range")) for g in s3.gets][0] == ("infineon/reel.7z", None)
    assert {g["Key"] for g in s3.gets[1:]} == {staged}
    assert [g.get("Range") is not None for g in s3.gets[1:]] == [False, True, True]
    assert len(imports(aws)) == 6
    summary = aws.audit.get_summary(mid)
    assert (summary["entries"], summary["queued"], summary["duplicates"]) == (8, 6, 2)
    assert summary["sha256"] == hashlib.sha256(reel).hexdigest()  # the reel's, not the staged object's
    head = aws.s3.head_object(Bucket=aws.bucket, Key=staged)
    assert head["ContentLength"] == summary["staged_size"]


def test_an_expired_staged_reel_is_extracted_again_and_the_cursor_still_fits(aws):
    from thingpress.provider.staging import staging_key

    devs = f.devices(5)
    event = put_and_event(aws.s3, aws.bucket, "infineon/reel.7z",
                          f.infineon_reel({"E0E0": devs, "E0E1": devs[:1], "E0E2": devs[:1]}))
    provider = aws.provider("infineon", tuning=Tuning(max_entries_per_invocation=2))
    provider.handle(sqs_event(event), FakeContext())
    [cont] = continuations(aws)
    mid = mid_of("infineon", event)
    aws.s3.delete_object(Bucket=aws.bucket, Key=staging_key(mid))  # the lifecycle rule expired it

    assert run_to_the_end(aws, provider, cont) == 2

    assert sorted(m.position for m in imports(aws)) == [1, 2, 3, 4, 5]
    assert aws.audit.get_summary(mid)["entries"] == 5


def provider_role_s3(aws: Any) -> Any:
    """S3 signed as a role with the Infineon provider's S3 grants (``StageReels``, reading manifests) and,
    like it, no s3:ListBucket: a missing object is 403 to it, as on AWS (thingpress_cli/local/emulator/s3_rules.py)."""
    import boto3

    iam, sts = boto3.client("iam", region_name="us-east-1"), boto3.client("sts", region_name="us-east-1")
    role = iam.create_role(RoleName="infineon-provider", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    iam.put_role_policy(RoleName="infineon-provider", PolicyName="provider", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": f"arn:aws:s3:::{aws.bucket}/*"},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": f"arn:aws:s3:::{aws.bucket}/staging/*"}]}))
    creds = sts.assume_role(RoleArn=role, RoleSessionName="provider")["Credentials"]
    return boto3.client("s3", region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


def _expired_mid_reel(aws: Any) -> tuple[Any, dict[str, Any], str, dict[str, Any]]:
    """An Infineon reel's first chunk run as the provider role, its staged object then expired:
    (provider, the continuation, the manifest id, the S3 event)."""
    from thingpress.provider.staging import staging_key

    devs = f.devices(5)
    event = put_and_event(aws.s3, aws.bucket, "infineon/reel.7z",
                          f.infineon_reel({"E0E0": devs, "E0E1": devs[:1], "E0E2": devs[:1]}))
    s3 = provider_role_s3(aws)
    provider = aws.provider("infineon", s3=s3, tuning=Tuning(max_entries_per_invocation=2))
    assert provider.handle(sqs_event(event), FakeContext()) == {"batchItemFailures": []}
    [cont] = continuations(aws)
    mid = mid_of("infineon", event)
    aws.s3.delete_object(Bucket=aws.bucket, Key=staging_key(mid))  # the lifecycle rule expired it (7 days)
    with pytest.raises(ClientError) as hidden:
        s3.head_object(Bucket=aws.bucket, Key=staging_key(mid))
    assert hidden.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403  # not 404: the role may not list
    return provider, cont, mid, event


def test_a_redrive_after_the_staged_reel_expired_stages_it_again_though_s3_answers_403(aws):
    """The manifest's continuation dead-lettered and redriven a week later (DLQ messages live 14 days,
    staged reels 7): the provider, which may not list the bucket, gets 403 for the expired staged
    object, extracts the reel again and finishes, instead of failing five times into the DLQ again."""
    from thingpress.provider.staging import staging_key

    provider, cont, mid, _ = _expired_mid_reel(aws)

    assert run_to_the_end(aws, provider, cont) == 2

    assert sorted(m.position for m in imports(aws)) == [1, 2, 3, 4, 5]
    summary = aws.audit.get_summary(mid)
    assert (summary["entries"], summary["parse_done"]) == (5, True)
    assert aws.s3.head_object(Bucket=aws.bucket, Key=staging_key(mid))["ContentLength"] == summary["staged_size"]


def test_a_redrive_after_the_reel_itself_is_gone_too_is_refused_naming_the_manifest(aws):
    provider, cont, mid, event = _expired_mid_reel(aws)
    obj = event["Records"][0]["s3"]["object"]
    aws.s3.delete_object(Bucket=aws.bucket, Key="infineon/reel.7z", VersionId=obj["versionId"])

    assert provider.handle(sqs_event(cont), FakeContext()) == {"batchItemFailures": []}  # no retry, no DLQ

    summary = aws.audit.get_summary(mid)
    assert summary["state"] == REFUSED
    assert summary["reason"].startswith(f"s3://manifests/infineon/reel.7z (version {obj['versionId']}): ")
    assert continuations(aws) == []


def test_the_deadline_is_checked_between_entries_from_the_first_one(aws, pems):
    body = generated_manifest(pems[:10])
    event = put_and_event(aws.s3, aws.bucket, "generated/slow.txt", body)
    provider = aws.provider(tuning=Tuning(safety_margin_ms=1000))
    # plenty at the start and for entries 1-4, low when checked after entry 5
    context = FakeContext(remaining_ms=[900_000] * 5 + [500])
    provider.handle(sqs_event(event), context)
    summary = aws.audit.get_summary(mid_of("generated", event))
    assert (summary["checkpoint"], summary["parse_done"]) == (5, False)
    assert len(continuations(aws)) == 1


def test_an_object_over_the_size_limit_is_refused_with_the_reason(aws, pems):
    from events import s3_event

    from thingpress.provider.reading import MAX_MANIFEST_BYTES

    out = aws.s3.put_object(Bucket=aws.bucket, Key="generated/huge.txt", Body=generated_manifest(pems[:1]))
    event = s3_event(aws.bucket, "generated/huge.txt", version_id=out["VersionId"], etag=out["ETag"].strip('"'),
                     size=MAX_MANIFEST_BYTES + 1)
    aws.provider().handle(sqs_event(event), FakeContext())
    summary = aws.audit.get_summary(mid_of("generated", event))
    assert summary["state"] == REFUSED
    assert summary["reason"] == (f"s3://manifests/generated/huge.txt (version {out['VersionId']}): the object is "
                                 f"{MAX_MANIFEST_BYTES + 1:,} bytes, more than the provider's limit of "
                                 f"{MAX_MANIFEST_BYTES:,} bytes (10 GiB): split the manifest")
    assert imports(aws) == []
