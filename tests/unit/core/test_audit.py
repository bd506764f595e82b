"""The audit table's exactly-once counting, on moto's DynamoDB."""

from __future__ import annotations

import boto3
import pytest

from aws_fixtures import REGION, create_audit_table, in_process_aws
from thingpress.audit.keys import manifest_id
from thingpress.audit.outcomes import OutcomeRecord
from thingpress.audit.states import ALREADY_PRESENT, COMPLETE, FAILED, IMPORTED, PARSING, QUEUED, REFUSED, REJECTED
from thingpress.audit.summaries import Progress
from thingpress.audit.table import AuditTable

MID = "generated-0123456789abcdef0123"


@pytest.fixture
def table(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    with in_process_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        yield AuditTable(client, create_audit_table(client))


def start(table: AuditTable) -> None:
    table.start_manifest(MID, vendor="generated", bucket="b", key="incoming/generated/x.txt", version="v1",
                         etag="e", size=10)


def test_manifest_id_is_deterministic_per_object_version():
    a = manifest_id("generated", "b", "k", "v1")
    assert a == manifest_id("generated", "b", "k", "v1")
    assert a != manifest_id("generated", "b", "k", "v2")
    assert a.startswith("generated-") and len(a) == len("generated-") + 20


def test_start_manifest_twice_returns_the_stored_row(table):
    start(table)
    assert table.checkpoint(MID, 5, Progress(entries=5, queued=5))
    again = table.start_manifest(MID, vendor="generated", bucket="b", key="k", version="v1", etag="e", size=1)
    assert again["checkpoint"] == 5 and again["queued"] == 5


def test_checkpoint_only_moves_forward(table):
    start(table)
    assert table.checkpoint(MID, 10, Progress(entries=10, queued=9, rejected=1))
    assert not table.checkpoint(MID, 10, Progress(entries=10, queued=10))  # a second commit of the same work
    assert not table.checkpoint(MID, 7, Progress(entries=1))
    row = table.get_summary(MID)
    assert (row["entries"], row["queued"], row["rejected"], row["outstanding"]) == (10, 9, 1, 9)


def test_each_outcome_counts_once_and_the_manifest_completes(table):
    start(table)
    table.checkpoint(MID, 3, Progress(entries=3, queued=2, duplicates=1), parse_done=True, sha256="ab")
    assert table.get_summary(MID)["state"] == PARSING  # checkpoint keeps the state it is given
    fp1, fp2 = "1" * 64, "2" * 64
    assert table.record_outcome(MID, fp1, IMPORTED, vendor="generated", position=1, thing_name="t1")
    assert not table.record_outcome(MID, fp1, IMPORTED, vendor="generated", position=1, thing_name="t1")
    assert table.get_summary(MID)["state"] != COMPLETE
    assert table.record_outcome(MID, fp2, ALREADY_PRESENT, vendor="generated", position=3, thing_name="t2")
    row = table.get_summary(MID)
    assert row["state"] == COMPLETE and row["completed_at"]
    assert (row["imported"], row["already_present"], row["outstanding"]) == (1, 1, 0)
    assert row["imported"] + row["already_present"] + row["rejected"] + row["failed"] + row["duplicates"] == row["entries"]
    assert [r["status"] for r in table.entries(MID)] == [IMPORTED, ALREADY_PRESENT]


def test_outcomes_before_parse_done_complete_at_the_final_checkpoint(table):
    start(table)
    table.checkpoint(MID, 1, Progress(entries=1, queued=1))
    assert table.record_outcome(MID, "3" * 64, IMPORTED, vendor="generated", position=1, thing_name="t")
    assert table.get_summary(MID)["state"] != COMPLETE
    assert table.checkpoint(MID, 1, Progress(), state=QUEUED, parse_done=True)
    assert table.get_summary(MID)["state"] == COMPLETE


def test_refusals_are_rows_with_reasons(table):
    start(table)
    table.put_refusals(MID, "generated", [{"position": p, "reason": f"line {p}: bad"} for p in range(1, 31)])
    rows = table.entries(MID)
    assert len(rows) == 30 and rows[0]["sk"] == "R#000000001" and rows[0]["reason"] == "line 1: bad"


def test_refused_manifest_never_completes(table):
    start(table)
    table.refuse_manifest(MID, "incoming/generated/x.txt: empty file")
    assert not table.try_complete(MID)
    row = table.get_summary(MID)
    assert (row["state"], row["reason"]) == (REFUSED, "incoming/generated/x.txt: empty file")


def test_unknown_status_is_a_programming_error(table):
    with pytest.raises(ValueError, match="unknown status"):
        table.record_outcome(MID, "4" * 64, "DONE", vendor="g", position=1, thing_name="t")


def _outcome(n: int, status: str = IMPORTED, mid: str = MID) -> OutcomeRecord:
    return OutcomeRecord(mid, f"{n:064x}", status, vendor="generated", position=n, thing_name=f"Device-{n}")


def test_record_outcomes_writes_a_batch_once_and_counts_it_once(table):
    start(table)
    assert table.checkpoint(MID, 4, Progress(entries=4, queued=4), parse_done=True)
    batch = [_outcome(1), _outcome(2, REJECTED), _outcome(1), _outcome(3, ALREADY_PRESENT)]

    assert table.record_outcomes(batch) == [True, True, False, True]  # the second copy of 1 is not recorded
    row = table.get_summary(MID)
    assert (row["imported"], row["rejected"], row["already_present"], row["outstanding"]) == (1, 1, 1, 1)
    assert table.get_outcome(MID, f"{2:064x}")["status"] == REJECTED

    # A batch holding an already-recorded certificate: recorded one by one, the old row and count untouched.
    assert table.record_outcomes([_outcome(3, IMPORTED), _outcome(4)]) == [False, True]
    row = table.get_summary(MID)
    assert (row["imported"], row["already_present"], row["outstanding"]) == (2, 1, 0)
    assert table.get_outcome(MID, f"{3:064x}")["status"] == ALREADY_PRESENT
    assert row["state"] != COMPLETE and table.try_complete(MID)


def test_record_outcomes_splits_large_batches_and_manifests(table):
    other = "generated-" + "f" * 20
    start(table)
    table.start_manifest(other, vendor="generated", bucket="b", key="y.txt", version="v1", etag="e", size=1)
    assert table.checkpoint(MID, 150, Progress(entries=150, queued=150), parse_done=True)
    assert table.checkpoint(other, 2, Progress(entries=2, queued=2), parse_done=True)

    batch = [_outcome(n) for n in range(150)] + [_outcome(1, mid=other), _outcome(2, FAILED, mid=other)]
    assert all(table.record_outcomes(batch))
    assert (table.get_summary(MID)["imported"], table.get_summary(MID)["outstanding"]) == (150, 0)
    assert (table.get_summary(other)["imported"], table.get_summary(other)["failed"]) == (1, 1)


def test_certificate_claims_name_the_earlier_position_and_a_replay_is_no_duplicate(table):
    fps = [f"{i:064x}" for i in range(250)]
    # 250 claims, put a few at a time; a certificate named twice in one call is a duplicate of the first
    assert table.claim_certificates(MID, [(fp, i + 1) for i, fp in enumerate(fps)] + [(fps[7], 251)]) == {251: 8}
    # a later chunk: a repeat of position 3's certificate, and a replay of position 5's own claim
    assert table.claim_certificates(MID, [(fps[2], 300), (fps[4], 5), ("f" * 64, 301), ("f" * 64, 302)]) == {
        300: 3, 302: 301}
    assert table.claim_certificates(MID, [("f" * 64, 301)]) == {}  # replayed again: still its own
    assert table.entries(MID) == []  # claims are not entry rows


def test_a_claim_is_one_write_unit_a_plain_conditional_put(table):
    # issue 23: claims as transactions cost two write units each (the transaction only batched them)
    from thingpress_cli.local.emulator.usage import USAGE

    fps = [f"{i:064x}" for i in range(120)]
    USAGE.reset()
    assert table.claim_certificates(MID, [(fp, i + 1) for i, fp in enumerate(fps)]) == {}
    assert USAGE.report()["dynamodb"]["write_units"] == {"D#/*": 120}
    USAGE.reset()
    assert table.claim_certificates(MID, [(fps[0], 500), (fps[1], 2)]) == {500: 1}  # the stored position: no read
    report = USAGE.report()
    assert report["dynamodb"]["read_units"] == {} and report["requests"].get("dynamodb GetItem", 0) == 0


def test_claims_left_by_a_call_that_died_half_way_are_found_again_as_their_own(table):
    # a chunk whose claims were partly applied before a crash (no transaction: each put on its own) is replayed:
    # the applied ones are its own positions, so nothing is a duplicate, and a later repeat still finds them
    fps = [f"{i:064x}" for i in range(10)]
    assert table.claim_certificates(MID, [(fp, i + 1) for i, fp in enumerate(fps[:4])]) == {}
    assert table.claim_certificates(MID, [(fp, i + 1) for i, fp in enumerate(fps)]) == {}
    assert table.claim_certificates(MID, [(fps[2], 11), (fps[9], 12)]) == {11: 3, 12: 10}


def test_a_pause_is_noted_only_at_the_checkpoint_it_was_taken_and_before_the_end(table):
    from datetime import UTC, datetime

    start(table)
    table.checkpoint(MID, 5, Progress(entries=5, queued=5), previous=0)
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert table.note_paused(MID, checkpoint=5, seconds=90, now=at)
    row = table.get_summary(MID)
    assert (row["updated_at"], row["paused_until"], row["checkpoint"], row["outstanding"]) == (
        "2030-01-02T03:04:05Z", "2030-01-02T03:05:35Z", 5, 5)
    assert not table.note_paused(MID, checkpoint=4, seconds=90)   # another invocation moved on
    table.checkpoint(MID, 6, Progress(entries=1), previous=5, state=QUEUED, parse_done=True)
    assert not table.note_paused(MID, checkpoint=6, seconds=90)   # parsed: nothing to pause
    assert not table.note_paused("unknown", checkpoint=0, seconds=90)
