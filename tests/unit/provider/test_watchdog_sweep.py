"""The watchdog against moto: resumes idle manifests, marks STALLED what nothing can resume, exactly once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_fixtures import FakeContext, create_queue, drain_queue, put_and_event
from events import sqs_event
from provider_helpers import generated_manifest

from thingpress import messages
from thingpress.audit.keys import SUMMARY_SK, manifest_id, manifest_pk, now_iso, to_item
from thingpress.audit.outcomes import OutcomeRecord
from thingpress.audit.states import COMPLETE, IMPORTED, PARSING, QUEUED, REFUSED, STALLED
from thingpress.audit.table import AuditTable
from thingpress.provider.queue_messages import CONTINUE_SCHEMA, parse_queue_message
from thingpress.provider.runtime import Tuning
from thingpress.watchdog import SweepResult, Watchdog

KEY = "generated/batch-1.txt"
STALL_AFTER = 1800.0


def later(seconds: float = STALL_AFTER + 60) -> Any:
    """A clock that is ``seconds`` ahead of the real one (the audit rows carry real time)."""
    return lambda: time.time() + seconds


@pytest.fixture
def dlq(aws) -> str:
    return create_queue(aws.sqs, "import-dlq")


def watchdog(aws: Any, dlq: str, *, clock: Any = None, table: Any = None) -> Watchdog:
    return Watchdog(audit=table or aws.audit, sqs=aws.sqs, manifest_queue_urls={"generated": aws.manifest_queue},
                    import_queue_url=aws.import_queue, import_dlq_url=dlq, stall_after_seconds=STALL_AFTER,
                    clock=clock or later())


def mid_of(event: dict[str, Any], key: str = KEY) -> str:
    return manifest_id("generated", "manifests", key, event["Records"][0]["s3"]["object"]["versionId"])


def parse(aws: Any, pems: list[bytes], count: int, *, tuning: Tuning | None = None) -> str:
    """Upload ``count`` certificates and run the provider once on the S3 event; the manifest id."""
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:count]))
    assert aws.provider(tuning=tuning).handle(sqs_event(event), FakeContext()) == {"batchItemFailures": []}
    return mid_of(event)


def record_all(aws: Any, sent: list[messages.ImportMessage]) -> None:
    """Every import message's outcome, written as the importer writes a batch (no completion check)."""
    aws.audit.record_outcomes([OutcomeRecord(m.manifest_id, m.fingerprint, IMPORTED, vendor=m.vendor,
                                             position=m.position, thing_name=m.thing_name) for m in sent])


# -- resuming ----------------------------------------------------------------------


def test_a_manifest_stuck_parsing_gets_a_continuation_and_finishes(aws, dlq, pems):
    mid = parse(aws, pems, 12, tuning=Tuning(max_entries_per_invocation=5))
    first = drain_queue(aws.sqs, aws.import_queue)
    lost = drain_queue(aws.sqs, aws.manifest_queue)  # the provider's own continuation is lost
    assert len(first) == 5 and len(lost) == 1
    stuck = aws.audit.get_summary(mid)
    assert (stuck["state"], stuck["checkpoint"], stuck["parse_done"]) == (PARSING, 5, False)

    result = watchdog(aws, dlq).sweep()

    assert result == SweepResult(checked=1, resumed=[mid], stalled=[])
    (sent,) = drain_queue(aws.sqs, aws.manifest_queue)
    body = sent["Body"]
    assert '"schema":"' + CONTINUE_SCHEMA + '"' in body and f'"manifest_id":"{mid}"' in body
    assert parse_queue_message(body).handle.chain == 1  # a new chain: the lost continuation (chain 0) is stale now
    assert aws.audit.get_summary(mid)["chain"] == 1
    assert aws.provider().handle(sqs_event(body), FakeContext()) == {"batchItemFailures": []}
    rest = [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]
    assert sorted(m.position for m in rest) == list(range(6, 13))
    done = aws.audit.get_summary(mid)
    assert (done["state"], done["entries"], done["queued"], done["outstanding"]) == (QUEUED, 12, 12, 12)


def test_a_second_sweep_makes_the_first_continuation_stale(aws, dlq, pems):
    mid = parse(aws, pems, 12, tuning=Tuning(max_entries_per_invocation=5))
    drain_queue(aws.sqs, aws.import_queue)
    drain_queue(aws.sqs, aws.manifest_queue)
    dog = watchdog(aws, dlq)
    assert dog.sweep().resumed == [mid]
    assert dog.sweep().resumed == [mid]  # a second sweep before the first continuation ran: a new chain again
    first, second = (m["Body"] for m in drain_queue(aws.sqs, aws.manifest_queue))
    before = aws.audit.get_summary(mid)
    aws.provider().handle(sqs_event(first), FakeContext())
    assert aws.audit.get_summary(mid) == before and drain_queue(aws.sqs, aws.import_queue) == []  # stale

    aws.provider().handle(sqs_event(second), FakeContext())

    assert len(drain_queue(aws.sqs, aws.import_queue)) == 7  # positions 6..12, once
    assert drain_queue(aws.sqs, aws.manifest_queue) == []  # no other handle left behind
    # finished parsing: the watchdog leaves it to the importer now (its messages are "in the queue")
    assert watchdog(aws, dlq).sweep().resumed == []


def test_a_manifest_with_recent_progress_is_left_alone(aws, dlq, pems):
    parse(aws, pems, 12, tuning=Tuning(max_entries_per_invocation=5))
    drain_queue(aws.sqs, aws.manifest_queue)

    result = watchdog(aws, dlq, clock=later(STALL_AFTER - 60)).sweep()

    assert result == SweepResult(checked=0, resumed=[], stalled=[])
    assert drain_queue(aws.sqs, aws.manifest_queue) == []


def test_a_parsed_manifest_whose_completion_was_lost_is_completed(aws, dlq, pems):
    mid = parse(aws, pems, 4)
    record_all(aws, [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)])
    assert aws.audit.get_summary(mid)["state"] == QUEUED  # nobody ran try_complete

    result = watchdog(aws, dlq).sweep()

    assert result == SweepResult(checked=1, resumed=[mid], stalled=[])
    summary = aws.audit.get_summary(mid)
    assert (summary["state"], summary["imported"], summary["outstanding"]) == (COMPLETE, 4, 0)


# -- STALLED -----------------------------------------------------------------------


def test_outcomes_missing_and_no_progress_is_stalled_with_the_reason_once(aws, dlq, pems):
    mid = parse(aws, pems, 12)
    sent = [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]
    record_all(aws, sent[:9])  # three import messages vanished without an outcome
    seen = aws.audit.get_summary(mid)

    result = watchdog(aws, dlq).sweep()

    assert result == SweepResult(checked=1, resumed=[], stalled=[mid])
    summary = aws.audit.get_summary(mid)
    assert summary["state"] == STALLED
    assert summary["reason"] == (
        f"parsed, but 3 of 12 entries have no outcome (outstanding 3) and none came since {seen['updated_at']}: "
        "their import messages are in the import dead-letter queue (thingpress redrive), were lost, or keep "
        "failing; import queue holds 0, import dead-letter queue holds 0 message(s), of any manifest")
    assert summary["updated_at"] == seen["updated_at"]  # marking is not progress
    assert (summary["imported"], summary["outstanding"]) == (9, 3)
    # idempotent: STALLED is not looked at again
    assert watchdog(aws, dlq).sweep() == SweepResult(checked=0, resumed=[], stalled=[])
    assert aws.audit.get_summary(mid)["stalled_at"] == summary["stalled_at"]


@pytest.mark.parametrize("where", ["visible", "in_flight", "dlq"])
def test_stalled_whatever_other_manifests_hold_in_the_queues(aws, dlq, pems, where):
    """Issue 21, defect 4: one other manifest's import message, or any old DLQ message, kept a leaked
    manifest QUEUED (and holding the import window) for up to 14 days. A manifest is judged by its
    own progress; the reason says what the queues hold. A redrive still completes it."""
    mid = parse(aws, pems, 3)
    lost = [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]  # its messages: lost
    other = ('{"other manifest": 1}' if where != "dlq" else "an old dead letter")
    aws.sqs.send_message(QueueUrl=dlq if where == "dlq" else aws.import_queue, MessageBody=other)
    if where == "in_flight":
        got = aws.sqs.receive_message(QueueUrl=aws.import_queue, MaxNumberOfMessages=10, VisibilityTimeout=600)
        assert len(got["Messages"]) == 1

    result = watchdog(aws, dlq).sweep()

    assert result == SweepResult(checked=1, resumed=[], stalled=[mid])
    summary = aws.audit.get_summary(mid)
    assert summary["state"] == STALLED
    held = ("import queue holds 0, import dead-letter queue holds 1" if where == "dlq"
            else "import queue holds 1, import dead-letter queue holds 0")
    assert summary["reason"].startswith("parsed, but 3 of 3 entries have no outcome (outstanding 3)")
    assert held in summary["reason"]
    assert aws.audit.unfinished_manifests() == []  # no longer holds room in the import window
    record_all(aws, lost)  # the missing messages come back (a redrive) and are imported
    assert aws.audit.try_complete(mid) and aws.audit.get_summary(mid)["state"] == COMPLETE


def test_a_late_outcome_completes_a_stalled_manifest(aws, dlq, pems):
    mid = parse(aws, pems, 2)
    sent = [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]
    assert watchdog(aws, dlq).sweep().stalled == [mid]

    record_all(aws, sent)  # e.g. an operator re-imported the two certificates
    assert aws.audit.try_complete(mid)

    assert aws.audit.get_summary(mid)["state"] == COMPLETE


def test_complete_and_refused_manifests_are_left_alone(aws, dlq, pems):
    complete = parse(aws, pems, 2)
    record_all(aws, [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)])
    assert aws.audit.try_complete(complete)
    refused = put_and_event(aws.s3, aws.bucket, "generated/wrong-suffix.csv", b"x\n")
    aws.provider().handle(sqs_event(refused), FakeContext())
    mids = complete, mid_of(refused, "generated/wrong-suffix.csv")
    assert [aws.audit.get_summary(m)["state"] for m in mids] == [COMPLETE, REFUSED]
    before = [aws.audit.get_summary(m) for m in mids]

    assert watchdog(aws, dlq, clock=later(10 * STALL_AFTER)).sweep() == SweepResult(checked=0, resumed=[], stalled=[])

    assert [aws.audit.get_summary(m) for m in mids] == before
    assert drain_queue(aws.sqs, aws.manifest_queue) == []


# -- concurrency -------------------------------------------------------------------


class PausingTable:
    """An AuditTable whose ``method`` waits at the exact point, called and not yet run: by default
    ``mark_stalled`` (judged, not yet written); ``recount`` (the shards read by the sweep, the rows not yet)."""

    def __init__(self, table: AuditTable, method: str = "mark_stalled"):
        self._table = table
        self._method = method
        self.reached = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._table, name)
        if name != self._method:
            return real

        def paused(*args: Any, **kwargs: Any) -> Any:
            self.reached.set()
            assert self.release.wait(10)
            return real(*args, **kwargs)

        return paused


def test_two_concurrent_sweeps_mark_a_manifest_stalled_once(aws, dlq, pems):
    mid = parse(aws, pems, 5)
    drain_queue(aws.sqs, aws.import_queue)
    paused = PausingTable(aws.audit)
    results: dict[str, SweepResult] = {}
    first = threading.Thread(target=lambda: results.setdefault("first", watchdog(aws, dlq, table=paused).sweep()))
    first.start()
    assert paused.reached.wait(10)  # the first sweep judged the manifest STALLED and is about to write

    results["second"] = watchdog(aws, dlq).sweep()
    paused.release.set()
    first.join(10)

    assert results["second"].stalled == [mid]
    assert results["first"] == SweepResult(checked=1, resumed=[], stalled=[])
    assert aws.audit.get_summary(mid)["state"] == STALLED


def test_an_outcome_recorded_after_the_judgement_wins_over_stalled(aws, dlq, pems):
    mid = parse(aws, pems, 2)
    sent = [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]
    paused = PausingTable(aws.audit)
    results: dict[str, SweepResult] = {}
    sweeper = threading.Thread(target=lambda: results.setdefault("sweep", watchdog(aws, dlq, table=paused).sweep()))
    sweeper.start()
    assert paused.reached.wait(10)

    aws.audit.record_outcome(sent[0].manifest_id, sent[0].fingerprint, IMPORTED, vendor="generated",
                             position=sent[0].position, thing_name=sent[0].thing_name, complete=False)
    paused.release.set()
    sweeper.join(10)

    assert results["sweep"].stalled == []
    summary = aws.audit.get_summary(mid)
    assert (summary["state"], summary["outstanding"]) == (QUEUED, 1)


def test_the_index_lists_unfinished_summaries_only(aws, pems):
    mid = parse(aws, pems, 3)
    done = parse(aws, pems[3:], 1)
    aws.audit.client.update_item(TableName=aws.audit.table, Key=to_item({"pk": manifest_pk(done), "sk": SUMMARY_SK}),
                                 UpdateExpression="SET #s = :c", ExpressionAttributeNames={"#s": "state"},
                                 ExpressionAttributeValues=to_item({":c": COMPLETE}))

    assert [(r["manifest_id"], r["sk"]) for r in aws.audit.unfinished_manifests()] == [(mid, SUMMARY_SK)]


# -- the handler -------------------------------------------------------------------


def test_the_handler_sweeps_and_puts_the_stalled_metric(aws, dlq, pems, monkeypatch, capsys):
    import json as jsonlib

    import watchdog_handler

    from thingpress import settings

    mid = parse(aws, pems, 3)
    drain_queue(aws.sqs, aws.import_queue)
    for name, value in {settings.AUDIT_TABLE: aws.audit.table, settings.IMPORT_QUEUE_URL: aws.import_queue,
                        settings.IMPORT_DLQ_URL: dlq,
                        settings.MANIFEST_QUEUE_URLS: jsonlib.dumps({"generated": aws.manifest_queue})}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(watchdog_handler, "_watchdog", None)
    # the last progress was an hour ago (the default threshold is twice the 900 s provider timeout)
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    aws.dynamodb.update_item(TableName=aws.audit.table, Key=to_item({"pk": manifest_pk(mid),
                                                                           "sk": SUMMARY_SK}),
                             UpdateExpression="SET updated_at = :t",
                             ExpressionAttributeValues=to_item({":t": an_hour_ago}))
    capsys.readouterr()

    answer = watchdog_handler.lambda_handler({"detail-type": "Scheduled Event", "time": "2026-12-01T00:00:00Z"},
                                             FakeContext(function_name="thingpress-test-watchdog"))

    assert answer == {"checked": 1, "looked_again": [], "resumed": [], "stalled": [mid]}
    emf = [jsonlib.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (blob,) = emf
    assert blob["ManifestsStalled"] == [1.0] and blob["ManifestsResumed"] == [0.0]
    assert blob["service"] == "watchdog" and blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "thingpress"
    assert aws.audit.get_summary(mid)["state"] == STALLED


# -- counts lost between an importer's rows and their count (thingpress.audit, "Counting, exactly once") --


class Killed(BaseException):
    """The importer invocation dies between its rows and their count (a BaseException: nothing catches it)."""


def records(sent: list[messages.ImportMessage]) -> list[OutcomeRecord]:
    return [OutcomeRecord(m.manifest_id, m.fingerprint, IMPORTED, vendor=m.vendor, position=m.position,
                          thing_name=m.thing_name) for m in sent]


def rows_without_count(aws: Any, sent: list[messages.ImportMessage], now: datetime | None = None) -> None:
    """Write the rows of ``sent`` as the importer does and die before they are counted."""
    table = AuditTable(aws.audit.client, aws.audit.table)

    def killed(*_: Any, **__: Any) -> None:
        raise Killed

    table._count = killed  # type: ignore[method-assign]
    with pytest.raises(Killed):
        table.record_outcomes(records(sent), now=now)


def test_rows_whose_count_was_lost_are_counted_and_the_manifest_completes(aws, dlq, pems):
    mid = parse(aws, pems, 6)
    sent = [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]
    record_all(aws, sent[:2])
    rows_without_count(aws, sent[2:])
    assert aws.audit.record_outcomes(records(sent[2:])) == [False] * 4  # the redelivery finds its rows
    lost = aws.audit.get_summary(mid)
    assert (lost["imported"], lost["outstanding"], lost["state"]) == (2, 4, QUEUED)

    result = watchdog(aws, dlq).sweep()

    assert result == SweepResult(checked=1, resumed=[mid], stalled=[], recounted=[mid])
    summary = aws.audit.get_summary(mid)
    assert (summary["state"], summary["imported"], summary["outstanding"]) == (COMPLETE, 6, 0)
    assert watchdog(aws, dlq).sweep() == SweepResult()  # counted once: complete, never looked at again


def test_rows_written_lately_are_not_recounted_until_no_invocation_can_be_counting_them(aws, dlq, pems):
    mid = parse(aws, pems, 3)
    sent = [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]
    late = datetime.now(UTC) + timedelta(seconds=STALL_AFTER)
    rows_without_count(aws, sent, now=late)  # rows younger than the sweep's cutoff (now + 60 s)

    assert watchdog(aws, dlq).sweep() == SweepResult(checked=1)  # neither counted nor STALLED
    assert (aws.audit.get_summary(mid)["state"], aws.audit.get_summary(mid)["outstanding"]) == (QUEUED, 3)

    result = watchdog(aws, dlq, clock=later(2 * STALL_AFTER + 120)).sweep()

    assert result == SweepResult(checked=1, resumed=[mid], recounted=[mid])
    assert aws.audit.get_summary(mid)["imported"] == 3


def test_a_count_that_lands_during_the_recount_wins(aws, dlq, pems):
    """Without the recount's condition on the shards as read, the late count and the recount would
    both count the late row: imported 4 of 3 rows."""
    mid = parse(aws, pems, 4)
    sent = [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]
    rows_without_count(aws, sent[:2])
    paused = PausingTable(aws.audit, "recount")
    results: dict[str, SweepResult] = {}
    sweeper = threading.Thread(target=lambda: results.setdefault("sweep", watchdog(aws, dlq, table=paused).sweep()))
    sweeper.start()
    assert paused.reached.wait(10)

    record_all(aws, sent[2:3])  # an importer counts a row meanwhile
    paused.release.set()
    sweeper.join(10)

    assert results["sweep"] == SweepResult(checked=1)  # the shards moved: nothing written
    assert (aws.audit.get_summary(mid)["imported"], aws.audit.get_summary(mid)["outstanding"]) == (1, 3)
    assert watchdog(aws, dlq).sweep() == SweepResult(checked=1, recounted=[mid])  # the next sweep counts the 2
    summary = aws.audit.get_summary(mid)
    assert (summary["imported"], summary["outstanding"], summary["state"]) == (3, 1, QUEUED)


def test_a_manifest_paused_on_its_own_lost_counts_is_recounted(aws, dlq, pems):
    """Alive by its backpressure pauses, so never idle: its lost counts hold its room in the import window."""
    mid = parse(aws, pems, 12, tuning=Tuning(max_entries_per_invocation=5))
    sent = [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]
    rows_without_count(aws, sent)
    clock = later()
    assert aws.audit.note_paused(mid, checkpoint=5, seconds=60, now=datetime.fromtimestamp(clock() - 10, UTC))

    result = watchdog(aws, dlq, clock=clock).sweep()

    assert result == SweepResult(checked=0, recounted=[mid])
    summary = aws.audit.get_summary(mid)
    assert (summary["imported"], summary["outstanding"], summary["state"]) == (5, 0, PARSING)


# -- a STALLED manifest looked at again ---------------------------------------------


def at(seconds: float) -> datetime:
    """``seconds`` ahead of the real clock, as a datetime (the watchdog's clocks above are epoch seconds)."""
    return datetime.fromtimestamp(time.time() + seconds, UTC)


def stalled(aws: Any, dlq: str, pems: list[bytes], count: int) -> tuple[str, list[messages.ImportMessage]]:
    """A manifest of ``count`` whose import messages went to the DLQ: marked STALLED by a sweep
    ``STALL_AFTER + 60`` s ahead; its id and its lost messages."""
    mid = parse(aws, pems, count)
    sent = [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]
    assert watchdog(aws, dlq).sweep() == SweepResult(checked=1, stalled=[mid])
    return mid, sent


def test_a_redriven_stalled_manifest_whose_counts_were_lost_is_counted_and_completes(aws, dlq, pems):
    """The redrive's importer dies between its rows and their count: nothing moved on the manifest, and
    without the noted redrive no sweep would ever look at it again (STALLED for good, 3 rows uncounted)."""
    mid, sent = stalled(aws, dlq, pems, 3)
    rows_without_count(aws, sent, now=at(2 * STALL_AFTER))  # the redriven imports: rows, no count
    assert watchdog(aws, dlq, clock=later(4 * STALL_AFTER)).sweep() == SweepResult()  # nothing noted it: left
    assert aws.audit.note_redrive(mid, now=at(2 * STALL_AFTER))

    result = watchdog(aws, dlq, clock=later(4 * STALL_AFTER)).sweep()

    assert result == SweepResult(looked_again=[mid], resumed=[mid], recounted=[mid])
    summary = aws.audit.get_summary(mid)
    assert (summary["state"], summary["imported"], summary["outstanding"]) == (COMPLETE, 3, 0)


def test_a_stalled_manifest_counted_since_but_never_completed_is_completed(aws, dlq, pems):
    """The redriven outcomes were counted, and the completion check after the last one was lost."""
    mid, sent = stalled(aws, dlq, pems, 2)
    aws.audit.record_outcomes(records(sent), now=at(2 * STALL_AFTER))  # counted; no completion check
    assert aws.audit.get_summary(mid)["state"] == STALLED
    assert watchdog(aws, dlq, clock=later(2 * STALL_AFTER + 60)).sweep() == SweepResult()  # not idle yet

    result = watchdog(aws, dlq, clock=later(4 * STALL_AFTER)).sweep()

    assert result == SweepResult(looked_again=[mid], resumed=[mid])
    assert aws.audit.get_summary(mid)["state"] == COMPLETE


def test_a_redrive_that_brought_nothing_back_marks_it_stalled_again_and_then_leaves_it(aws, dlq, pems):
    mid, sent = stalled(aws, dlq, pems, 3)
    first = aws.audit.get_summary(mid)
    record_all(aws, sent[:1])  # one of the three came back; two are lost for good
    assert aws.audit.note_redrive(mid, now=at(2 * STALL_AFTER))

    result = watchdog(aws, dlq, clock=later(4 * STALL_AFTER)).sweep()

    assert result == SweepResult(looked_again=[mid], stalled=[mid])
    summary = aws.audit.get_summary(mid)
    assert (summary["state"], summary["imported"], summary["outstanding"]) == (STALLED, 1, 2)
    assert summary["reason"].startswith("parsed, but 2 of 3 entries have no outcome (outstanding 2)")
    assert summary["stalled_at"] > first["stalled_at"]
    assert watchdog(aws, dlq, clock=later(6 * STALL_AFTER)).sweep() == SweepResult()  # nothing happened since


def test_a_redrive_noted_after_the_judgement_wins_over_marking_it_again(aws, dlq, pems):
    mid, _ = stalled(aws, dlq, pems, 2)
    assert aws.audit.note_redrive(mid, now=at(2 * STALL_AFTER))
    paused = PausingTable(aws.audit)
    results: dict[str, SweepResult] = {}
    sweeper = threading.Thread(target=lambda: results.setdefault(
        "sweep", watchdog(aws, dlq, table=paused, clock=later(4 * STALL_AFTER)).sweep()))
    sweeper.start()
    assert paused.reached.wait(10)  # judged STALLED again, about to write

    again = at(3 * STALL_AFTER)
    assert aws.audit.note_redrive(mid, now=again)  # another redrive meanwhile
    paused.release.set()
    sweeper.join(10)

    assert results["sweep"] == SweepResult(looked_again=[mid])  # not marked again: the later redrive gets its look
    assert aws.audit.get_summary(mid)["redriven_at"] == now_iso(again)
    assert watchdog(aws, dlq, clock=later(6 * STALL_AFTER)).sweep() == SweepResult(looked_again=[mid], stalled=[mid])


def test_a_stalled_summary_without_its_mark_time_is_looked_at_and_ends_no_sweep(aws, dlq, pems):
    """A summary edited by hand (no ``stalled_at``): read as marked never, not a KeyError ending every sweep."""
    mid, _ = stalled(aws, dlq, pems, 2)
    aws.dynamodb.update_item(TableName=aws.audit.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
                             UpdateExpression="REMOVE stalled_at")

    result = watchdog(aws, dlq, clock=later(4 * STALL_AFTER)).sweep()

    assert result == SweepResult(looked_again=[mid], stalled=[mid])
    assert aws.audit.get_summary(mid)["stalled_at"]


def test_only_a_stalled_manifest_takes_a_redrive_note(aws, dlq, pems):
    mid = parse(aws, pems, 2)
    assert not aws.audit.note_redrive(mid)  # QUEUED: the watchdog looks at it anyway
    assert "redriven_at" not in aws.audit.get_summary(mid)


def test_a_row_put_whose_answer_was_lost_is_counted_once(aws, pems):
    """botocore sends a put again when its answer is lost; the resend fails its condition, and the row it
    returns names this call (``write_token``): the call counts it. Without the token: imported 1 of 2."""
    mid = parse(aws, pems, 2)
    sent = [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]

    class LostAnswer:
        def __init__(self, client: Any):
            self._client, self.lost = client, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def put_item(self, **kwargs: Any) -> Any:
            if not self.lost:
                self.lost += 1
                self._client.put_item(**kwargs)  # applied; its answer never arrives
            return self._client.put_item(**kwargs)

    table = AuditTable(LostAnswer(aws.audit.client), aws.audit.table)
    assert table.record_outcomes(records(sent)) == [True, True]
    summary = aws.audit.get_summary(mid)
    assert (summary["imported"], summary["outstanding"]) == (2, 0)
