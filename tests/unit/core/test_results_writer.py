"""The results writer (thingpress.results): a COMPLETE manifest's rows as results.jsonl and errors.jsonl,
streamed a page at a time, written once, noted on the summary. In-process AWS: the bucket (versioned,
SSE-KMS by default with a customer-managed key, as the stack's) and the audit table."""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Iterator
from typing import Any

import moto.s3.models
import pytest

from aws_fixtures import FAKE_CREDENTIALS, client, create_audit_table, create_bucket, in_process_aws
from thingpress.audit.states import ALREADY_PRESENT, COMPLETE, FAILED, IMPORTED, QUEUED
from thingpress.audit.summaries import Progress
from thingpress.audit.table import AuditTable
from thingpress.results import writer as writer_mod
from thingpress.results.keys import FIELDS, results_keys
from thingpress.results.writer import ResultsWriter

MID = "generated-0123456789abcdef0123"
BUCKET = "thingpress-unit-manifests"
KEYS = results_keys(MID)


class Aws:
    def __init__(self):
        self.s3, self.dynamodb, kms = client("s3"), client("dynamodb"), client("kms")
        create_bucket(self.s3, BUCKET)
        self.key_arn = kms.create_key(Description="deployment key")["KeyMetadata"]["Arn"]
        self.s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": self.key_arn},
            "BucketKeyEnabled": True}]})
        self.audit = AuditTable(self.dynamodb, create_audit_table(self.dynamodb))
        self.calls: list[str] = []
        self.s3.meta.events.register("before-call.s3", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def writer(self, **kwargs: Any) -> ResultsWriter:
        return ResultsWriter(self.s3, self.audit, BUCKET, **kwargs)

    def lines(self, key: str) -> list[dict[str, Any]]:
        body = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        return [json.loads(line) for line in body.splitlines()]

    def versions(self, key: str) -> int:
        return len(self.s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", []))


@pytest.fixture
def aws(monkeypatch):
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with in_process_aws():
        yield Aws()


def complete_manifest(audit: AuditTable, outcomes: list[tuple[str, str | None]], refused: int = 0,
                      duplicates: int = 0) -> None:
    """A COMPLETE manifest: ``outcomes`` (status, reason) for positions 1.., then ``refused`` refusals,
    then ``duplicates`` (counted, no row)."""
    audit.start_manifest(MID, vendor="generated", bucket=BUCKET, key="incoming/generated/m.txt", version="v1",
                         etag="e", size=1, environment="unit")
    entries = len(outcomes) + refused + duplicates
    positions = range(len(outcomes) + 1, len(outcomes) + refused + 1)
    audit.put_refusals(MID, "generated", [{"position": p, "reason": f"line {p}: not a certificate"}
                                          for p in positions])
    assert audit.checkpoint(MID, entries, Progress(entries=entries, queued=len(outcomes), rejected=refused,
                                                   duplicates=duplicates), parse_done=True, state=QUEUED, previous=0)
    for position, (status, reason) in enumerate(outcomes, start=1):
        audit.record_outcome(MID, f"{position:064x}", status, vendor="generated", position=position,
                             thing_name=f"Thing-{position}", reason=reason,
                             certificate_id=f"{position:064x}" if status != FAILED else None)
    assert audit.get_summary(MID)["state"] == COMPLETE


MIXED = [(IMPORTED, None), (IMPORTED, None), (ALREADY_PRESENT, "THING_EXISTED"), (FAILED, "ThrottlingException x5")]


def test_one_line_per_row_and_the_errors_file_holds_what_was_not_imported(aws):
    complete_manifest(aws.audit, MIXED, refused=2, duplicates=1)

    record = aws.writer().write(MID)

    assert record == {**KEYS, "lines": 6, "errors": 3}  # 7 entries, one a duplicate (no row of its own)
    results = aws.lines(KEYS["results_key"])
    assert len(results) == 6 and all(list(line) == list(FIELDS) for line in results)
    assert sorted(line["position"] for line in results) == [1, 2, 3, 4, 5, 6]
    by_position = {line["position"]: line for line in results}
    assert by_position[1]["status"] == IMPORTED and by_position[1]["thing_name"] == "Thing-1"
    assert by_position[1]["certificate_id"] == f"{1:064x}" and by_position[1]["reason"] is None
    assert by_position[3]["reason"] == "THING_EXISTED"
    errors = aws.lines(KEYS["errors_key"])
    assert sorted((e["position"], e["status"], e["reason"]) for e in errors) == [
        (4, FAILED, "ThrottlingException x5"), (5, "REJECTED", "line 5: not a certificate"),
        (6, "REJECTED", "line 6: not a certificate")]
    assert aws.audit.get_summary(MID)["results"] == record
    for key in KEYS.values():  # the bucket's default encryption: SSE-KMS with its customer-managed key
        head = aws.s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == aws.key_arn
        assert head["ContentType"] == "application/x-ndjson"


def test_the_errors_file_exists_when_every_entry_was_imported(aws):
    complete_manifest(aws.audit, [(IMPORTED, None), (ALREADY_PRESENT, None)])
    assert aws.writer().write(MID) == {**KEYS, "lines": 2, "errors": 0}
    assert aws.s3.get_object(Bucket=BUCKET, Key=KEYS["errors_key"])["Body"].read() == b""


def test_a_second_run_reads_and_writes_nothing(aws):
    complete_manifest(aws.audit, MIXED, refused=1)
    first = aws.writer().write(MID)
    aws.calls.clear()
    again = aws.writer().write(MID)
    assert again == first and {type(again["lines"]), type(again["errors"])} == {int}
    assert aws.calls == []
    assert [aws.versions(key) for key in KEYS.values()] == [1, 1]


@pytest.mark.parametrize("part_size", [writer_mod.PART_SIZE, 300])
def test_a_writer_that_died_before_noting_finds_its_files_and_overwrites_nothing(aws, monkeypatch, part_size):
    """The objects exist, the summary does not say so (the first writer died between): the retry's
    conditional writes change nothing, its multipart uploads are aborted, and it notes the files."""
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)
    complete_manifest(aws.audit, MIXED * 3, refused=2)
    noted = aws.audit.note_results
    monkeypatch.setattr(aws.audit, "note_results", lambda mid, results: None)  # dies before its note
    aws.writer(part_size=part_size).write(MID)
    bodies = {key: aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in KEYS.values()}
    assert "results" not in aws.audit.get_summary(MID)
    monkeypatch.setattr(aws.audit, "note_results", noted)
    aws.calls.clear()

    record = aws.writer(part_size=part_size).write(MID)

    assert record == {**KEYS, "lines": 14, "errors": 5}
    assert aws.audit.get_summary(MID)["results"] == record
    assert [aws.versions(key) for key in KEYS.values()] == [1, 1]
    assert {key: aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in KEYS.values()} == bodies
    if part_size < len(bodies[KEYS["results_key"]]):
        assert "CompleteMultipartUpload" in aws.calls and "AbortMultipartUpload" in aws.calls
        assert aws.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    else:
        assert aws.calls.count("PutObject") == 2 and "CreateMultipartUpload" not in aws.calls


def test_a_large_file_goes_in_parts_with_the_same_lines(aws, monkeypatch):
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)
    complete_manifest(aws.audit, [(IMPORTED, None)] * 30, refused=3)
    single = ResultsWriter(aws.s3, aws.audit, BUCKET).write(MID)
    whole = aws.s3.get_object(Bucket=BUCKET, Key=KEYS["results_key"])["Body"].read()
    for key in KEYS.values():
        aws.s3.delete_object(Bucket=BUCKET, Key=key)
    aws.dynamodb.update_item(TableName=aws.audit.table, Key={"pk": {"S": f"M#{MID}"}, "sk": {"S": "#SUMMARY"}},
                             UpdateExpression="REMOVE results")
    aws.calls.clear()

    assert aws.writer(part_size=1000, page_size=7).write(MID) == single
    assert aws.calls.count("UploadPart") >= len(whole) // 1000 and aws.calls.count("CompleteMultipartUpload") == 1
    assert aws.calls.count("PutObject") == 1  # the errors file: 3 lines, under one part
    assert aws.s3.get_object(Bucket=BUCKET, Key=KEYS["results_key"])["Body"].read() == whole


def test_a_manifest_that_is_not_complete_gets_no_files(aws):
    aws.audit.start_manifest(MID, vendor="generated", bucket=BUCKET, key="incoming/generated/m.txt", version="v1",
                             etag="e", size=1)
    assert aws.writer().write(MID) is None and aws.writer().write("generated-unknown") is None
    assert aws.calls == [] and aws.s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_a_failed_write_aborts_its_upload(aws, monkeypatch):
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)
    complete_manifest(aws.audit, [(IMPORTED, None)] * 20)
    aws.calls.clear()
    with pytest.raises(RuntimeError):
        ResultsWriter(_Breaking(aws.s3, after=3), aws.audit, BUCKET, part_size=500).write(MID)
    assert "AbortMultipartUpload" in aws.calls
    assert aws.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert "results" not in aws.audit.get_summary(MID)


class _Breaking:
    """An S3 client whose ``after``-th UploadPart fails."""

    def __init__(self, real: Any, after: int):
        self.real, self.left = real, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def upload_part(self, **kwargs: Any) -> Any:
        self.left -= 1
        if self.left == 0:
            raise RuntimeError("connection reset")
        return self.real.upload_part(**kwargs)


# -- bounded memory ---------------------------------------------------------------------------------------


class Row(dict):
    """An audit row that can be watched (a plain dict cannot be weakly referenced)."""


class PagedAudit:
    """A COMPLETE manifest of ``rows`` rows, read ``page_size`` at a time; before each page it checks that
    no row of an earlier page is still alive but the last one handed out (the caller's loop variable until
    the next row replaces it): the writer holds at most the page it is on."""

    def __init__(self, rows: int):
        self.rows = rows
        self.pages = 0
        self.noted: dict[str, Any] | None = None
        self.watched: list[weakref.ref[Row]] = []

    def get_summary(self, mid: str) -> dict[str, Any]:
        return {"manifest_id": mid, "state": COMPLETE}

    def iter_entries(self, mid: str, page_size: int | None = None, *, consistent: bool = False) -> Iterator[Row]:
        assert consistent and page_size
        for start in range(0, self.rows, page_size):
            gc.collect()
            alive = sum(1 for ref in self.watched if ref() is not None)
            assert alive <= 1, f"page {self.pages}: {alive} rows of earlier pages still held"
            page = [Row(position=p + 1, fingerprint=f"{p:064x}", thing_name=f"Device-{p}", updated_at="2026-12-06",
                        status=FAILED if p % 10 == 0 else IMPORTED, reason="boom" if p % 10 == 0 else None)
                    for p in range(start, min(start + page_size, self.rows))]
            self.watched = [weakref.ref(row) for row in page]
            self.pages += 1
            yield from page
            del page

    def note_results(self, mid: str, results: dict[str, Any]) -> bool:
        self.noted = results
        return True


class PartsS3:
    """Records every body sent; keeps none."""

    def __init__(self):
        self.sizes: dict[str, list[int]] = {}

    def create_multipart_upload(self, *, Key: str, **_: Any) -> dict[str, str]:
        self.sizes[Key] = []
        return {"UploadId": f"u-{Key}"}

    def upload_part(self, *, Key: str, Body: bytes, **_: Any) -> dict[str, str]:
        self.sizes[Key].append(len(Body))
        return {"ETag": f'"{len(self.sizes[Key])}"'}

    def complete_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {}

    def put_object(self, *, Key: str, Body: bytes, **_: Any) -> dict[str, str]:
        self.sizes[Key] = [len(Body)]
        return {}


def test_the_writer_holds_one_page_of_rows_and_one_part_per_file():
    audit, s3 = PagedAudit(5_000), PartsS3()
    part_size = 16 * 1024
    record = ResultsWriter(s3, audit, BUCKET, part_size=part_size, page_size=100).write(MID)  # type: ignore[arg-type]
    assert audit.pages == 50
    assert record == audit.noted == {**KEYS, "lines": 5_000, "errors": 500}
    longest_line = 400
    for key in KEYS.values():
        *full, last = s3.sizes[key]
        assert full and all(part_size <= size < part_size + longest_line for size in full)
        assert 0 < last < part_size + longest_line


# -- the function's handler -------------------------------------------------------------------------------


def test_the_handler_writes_the_files_of_the_event_and_fails_what_it_cannot_read(aws, monkeypatch):
    import results_handler

    from aws_fixtures import FakeContext
    from events import sqs_event
    from thingpress import events, settings

    complete_manifest(aws.audit, MIXED)
    monkeypatch.setenv(settings.AUDIT_TABLE, aws.audit.table)
    monkeypatch.setenv(settings.RESULTS_BUCKET, BUCKET)
    monkeypatch.setattr(results_handler, "_writer", None)
    # The whole EventBridge event is the SQS body (the rule's target is the queue).
    event = {"version": "0", "id": "e-1", "source": events.SOURCE, "detail-type": events.MANIFEST_COMPLETED,
             "detail": events.completion_detail(aws.audit.get_summary(MID))}

    answer = results_handler.lambda_handler(sqs_event(event, "not json", {"detail": {}}),
                                            FakeContext(function_name="thingpress-unit-results"))

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
    assert aws.audit.get_summary(MID)["results"] == {**event["detail"]["results"], "lines": 4, "errors": 1}
    assert len(aws.lines(KEYS["results_key"])) == 4
