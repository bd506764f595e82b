"""Provider defects found by reading it for every interleaving (issue 10), each with the exact fault.

* an SDK ``ValueError`` raised inside ``BatchSender.flush`` (not the oversize refusal);
* an ambiguous checkpoint write: applied, response lost, the SDK's retry fails the condition;
* a behind invocation acknowledging the message the invocation ahead also holds, which then dies
  (the watchdog starts a new chain), and handles of an older chain (issue 21: they vanish);
* ``SendMessageBatch`` answers naming an unknown Id, or leaving an Id out;
* (found by the model-based test) the final checkpoint applied, the invocation killed before
  its completion check, every outcome already recorded: nothing would complete the manifest.

Faults are injected as exact responses (fake or wrapped clients) and threads are paused at the
exact point with ``threading.Event``: no sleeps.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from aws_fixtures import FakeContext, drain_queue, put_and_event
from events import sqs_event
from provider_helpers import generated_manifest

from thingpress import messages
from thingpress.audit.keys import manifest_id
from thingpress.audit.outcomes import OutcomeRecord
from thingpress.audit.states import COMPLETE, IMPORTED, QUEUED, REJECTED
from thingpress.audit.summaries import Progress
from thingpress.audit.table import AuditTable
from thingpress.provider.failures import ProviderError
from thingpress.provider.runtime import Provider, Tuning
from thingpress.provider.sending import BatchSender
from thingpress.watchdog import Watchdog

KEY = "generated/batch-1.txt"


def _record(body: Any) -> Any:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    return SQSRecord(sqs_event(body)["Records"][0])


def mid_of(event: dict[str, Any]) -> str:
    obj = event["Records"][0]["s3"]["object"]
    return manifest_id("generated", "manifests", KEY, obj["versionId"])


def positions_sent(aws: Any) -> list[int]:
    return sorted(messages.decode(m["Body"]).position for m in drain_queue(aws.sqs, aws.import_queue))


def settle(aws: Any, provider: Provider, limit: int = 10) -> list[str]:
    """Run every manifest queue message (continuations) until none is left; their outcomes."""
    outcomes: list[str] = []
    for _ in range(limit):
        pending = drain_queue(aws.sqs, aws.manifest_queue)
        if not pending:
            return outcomes
        for message in pending:
            outcomes.extend(r.outcome for r in provider.handle_record(_record(message["Body"]), FakeContext()))
    raise AssertionError(f"manifest queue still busy after {limit} rounds: {outcomes}")


# -- 1. an SDK ValueError inside flush is a failure to retry, not a refusal ------------------------


class ValueErrorOnce:
    """SQS whose first SendMessageBatch raises a ValueError, as an SDK can (bad parameter encoding)."""

    def __init__(self, real: Any):
        self.real = real
        self.calls: list[list[str]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append([e["Id"] for e in Entries])
        if len(self.calls) == 1:
            raise ValueError("Invalid header value b'\\n' (raised inside the SDK)")
        return self.real.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_value_error_from_the_sdk_inside_flush_fails_the_message_and_nothing_is_lost(aws, pems):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:12]))
    sqs = ValueErrorOnce(aws.sqs)

    response = aws.provider(sqs=sqs).handle(sqs_event(event), FakeContext())

    # The flush triggered by entry 11 raised: the message fails, nothing is refused or counted.
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert sqs.calls == [[str(i) for i in range(1, 11)]]
    mid = mid_of(event)
    assert aws.audit.entries(mid) == []
    summary = aws.audit.get_summary(mid)
    assert (summary["checkpoint"], summary["queued"], summary["rejected"], summary["parse_done"]) == (0, 0, 0, False)
    assert positions_sent(aws) == []

    # SQS delivers the event again: every entry is sent once and counted once.
    assert aws.provider(sqs=sqs).handle(sqs_event(event), FakeContext()) == {"batchItemFailures": []}
    assert positions_sent(aws) == list(range(1, 13))
    summary = aws.audit.get_summary(mid)
    assert (summary["entries"], summary["queued"], summary["rejected"], summary["outstanding"],
            summary["parse_done"]) == (12, 12, 0, 12, True)
    assert aws.audit.entries(mid) == []


def test_an_oversize_message_is_still_refused_with_its_reason(aws, pems, monkeypatch):
    """The one ValueError ``add`` raises on its own account keeps its refusal path."""
    from thingpress.provider import sending

    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:3]))
    monkeypatch.setattr(sending, "MAX_MESSAGE_BYTES", 400)  # an import message here is ~650 bytes

    assert aws.provider().handle(sqs_event(event), FakeContext()) == {"batchItemFailures": []}

    mid = mid_of(event)
    summary = aws.audit.get_summary(mid)
    assert (summary["entries"], summary["queued"], summary["rejected"], summary["parse_done"]) == (3, 0, 3, True)
    rows = aws.audit.entries(mid)
    assert [(r["position"], r["status"]) for r in rows] == [(1, REJECTED), (2, REJECTED), (3, REJECTED)]
    for row in rows:
        assert row["reason"].startswith(f"entry {row['position']}: message {row['position']} is ")
        assert row["reason"].endswith(" bytes, over SQS's 400-byte limit")
    assert positions_sent(aws) == []


# -- 2. an ambiguous checkpoint write is recognised as applied -------------------------------------


class LostCheckpointResponse:
    """DynamoDB whose checkpoint UpdateItem is applied but answered as the SDK's retry would be.

    The first attempt is applied and its response lost; botocore's retry sends the identical
    request, which fails the ``checkpoint = :prev`` condition: that failure is what the caller sees.
    """

    def __init__(self, real: Any, *, on_call: int = 1):
        self.real = real
        self.on_call = on_call
        self.checkpoints = 0

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        if "checkpoint = :pos" in kwargs.get("UpdateExpression", ""):
            self.checkpoints += 1
            if self.checkpoints == self.on_call:
                self.real.update_item(**kwargs)  # applied; the response never arrives
                return self.real.update_item(**kwargs)  # the retry: ConditionalCheckFailedException
        return self.real.update_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_an_ambiguous_checkpoint_write_counts_as_committed(aws):
    mid = "generated-" + "0" * 20
    table = AuditTable(LostCheckpointResponse(aws.dynamodb), aws.audit.table)
    table.start_manifest(mid, vendor="generated", bucket="b", key="k", version="v", etag=None, size=1)

    assert table.checkpoint(mid, 3, Progress(entries=3, queued=3), previous=0)

    summary = aws.audit.get_summary(mid)
    assert (summary["checkpoint"], summary["entries"], summary["queued"], summary["outstanding"]) == (3, 3, 3, 3)
    # Somebody else's write is still told apart: a stale base is refused.
    assert not table.checkpoint(mid, 5, Progress(entries=5, queued=5), previous=0)


def test_a_provider_whose_checkpoint_response_is_lost_carries_on_to_the_end(aws, pems):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:6]))
    provider = Provider("generated", settings=aws.settings("generated"), s3=aws.s3, sqs=aws.sqs,
                        dynamodb=LostCheckpointResponse(aws.dynamodb), sleep=lambda _s: None,
                        tuning=Tuning(checkpoint_every=2))

    [result] = provider.handle_record(_record(event), FakeContext())

    assert (result.outcome, result.entries, result.queued) == ("complete", 6, 6)
    summary = aws.audit.get_summary(mid_of(event))
    assert (summary["checkpoint"], summary["entries"], summary["queued"], summary["parse_done"]) == (6, 6, 6, True)
    assert positions_sent(aws) == list(range(1, 7))
    assert drain_queue(aws.sqs, aws.manifest_queue) == []


# -- 3. one live chain: a behind invocation acks; a stale handle vanishes; the watchdog takes over --


class Killed(BaseException):
    """The invocation's sandbox is killed (SIGKILL): no ``except Exception`` of the function runs."""


class DiesOnSecondBatch:
    """SQS for the invocation ahead: its second SendMessageBatch pauses, then the invocation is killed."""

    def __init__(self, real: Any):
        self.real = real
        self.calls = 0
        self.paused = threading.Event()
        self.release = threading.Event()

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 2:
            self.paused.set()
            assert self.release.wait(10), "the test never released the invocation ahead"
            raise Killed("the invocation ahead is killed here")
        return self.real.send_message_batch(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def watchdog(aws: Any, clock: float) -> Watchdog:
    """A watchdog whose clock is ``clock`` (epoch seconds) with a one-hour stall threshold."""
    return Watchdog(audit=aws.audit, sqs=aws.sqs, manifest_queue_urls={"generated": aws.manifest_queue},
                    import_queue_url=aws.import_queue, import_dlq_url=None, stall_after_seconds=3600,
                    clock=lambda: clock)


LATER = 4e9  # far past every stall threshold


class Recording:
    """SQS whose ``send_message`` calls (continuations) are recorded, not sent."""

    def __init__(self, real: Any, sent: list[dict[str, Any]]):
        self.real, self.sent = real, sent

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.sent.append(kwargs)
        return {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)
NOW = 2e9  # the providers' wall clock (leases)


def test_a_second_delivery_during_the_lease_waits_for_it_and_takes_over_when_the_holder_was_killed(aws, pems):
    """Two deliveries of one message at once (a visibility timeout ran out, S3 sent its event twice).
    The second finds the manifest leased: it cannot know whether the holder lives, so it sends the same
    handle again, delayed until the lease ends, and sends no import message. The holder commits 2 and is
    killed; the delayed handle takes the expired lease and finishes: every position sent exactly once."""
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:6]))
    mid = mid_of(event)
    tuning = Tuning(checkpoint_every=2)
    ahead_sqs = DiesOnSecondBatch(aws.sqs)
    ahead = aws.provider(sqs=ahead_sqs, tuning=tuning, wall_clock=lambda: NOW)
    died: list[BaseException] = []

    def run_ahead() -> None:
        try:
            ahead.handle_record(_record(event), FakeContext(remaining_ms=[60_000]))
        except Killed as exc:  # the death is the point; checked below
            died.append(exc)

    thread = threading.Thread(target=run_ahead)
    thread.start()
    assert ahead_sqs.paused.wait(10)  # it committed 2 and is inside its next send

    sent: list[dict[str, Any]] = []
    second = aws.provider(sqs=Recording(aws.sqs, sent), tuning=tuning, wall_clock=lambda: NOW + 1)
    [result] = second.handle_record(_record(event), FakeContext())

    assert result.outcome == "busy"
    ahead_sqs.release.set()  # ... and now the one ahead is killed, its lease still running
    thread.join(10)
    assert [type(e) for e in died] == [Killed]
    assert positions_sent(aws) == [1, 2]
    [delayed] = sent
    assert delayed["DelaySeconds"] == 60  # the holder's lease: its 60 s, less the 1 s already gone, plus 1
    body = json.loads(delayed["MessageBody"])
    assert (body["chain"], body.get("link")) == (0, None)  # the same handle: the S3 event's turn

    early = aws.provider(sqs=Recording(aws.sqs, sent), tuning=tuning, wall_clock=lambda: NOW + 30)
    assert [r.outcome for r in early.handle_record(_record(delayed["MessageBody"]), FakeContext())] == ["busy"]
    late = aws.provider(tuning=tuning, wall_clock=lambda: NOW + 61)  # after the holder's deadline
    assert [r.outcome for r in late.handle_record(_record(delayed["MessageBody"]), FakeContext())] == ["complete"]

    summary = aws.audit.get_summary(mid)
    assert (summary["checkpoint"], summary["entries"], summary["queued"], summary["parse_done"]) == (6, 6, 6, True)
    assert positions_sent(aws) == [3, 4, 5, 6]  # 1-2 were sent once, by the holder
    # The S3 event the killed invocation held comes back after its visibility timeout: finished.
    assert [r.outcome for r in aws.provider(tuning=tuning).handle_record(_record(event), FakeContext())] == ["skipped"]
    assert settle(aws, aws.provider(tuning=tuning)) == []


def test_an_invocation_that_fails_gives_its_lease_back_so_its_message_carries_on(aws, pems):
    """A failure (not a kill) releases the lease: the message, back from its visibility timeout, resumes."""
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:4]))

    class FailsOnce:
        calls = 0

        def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            FailsOnce.calls += 1
            if FailsOnce.calls == 2:
                raise ConnectionError("SQS endpoint unreachable")
            return aws.sqs.send_message_batch(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(aws.sqs, name)

    failing = aws.provider(sqs=FailsOnce(), tuning=Tuning(checkpoint_every=2), wall_clock=lambda: NOW)
    assert failing.handle(sqs_event(event), FakeContext())["batchItemFailures"]
    assert "lease_until" not in aws.audit.get_summary(mid_of(event))

    again = aws.provider(tuning=Tuning(checkpoint_every=2), wall_clock=lambda: NOW + 1)
    assert [r.outcome for r in again.handle_record(_record(event), FakeContext())] == ["complete"]
    assert positions_sent(aws) == [1, 2, 3, 4]


def test_a_handle_of_an_older_chain_is_stale_and_sends_nothing(aws, pems):
    """Issue 21, defect 3 (handles multiply). Chain 0's continuation fails and stays invisible; the
    watchdog resumes the idle manifest on chain 1, which moves on; then chain 0's message comes back.
    It must acknowledge and vanish: before chains it parsed the same stretches as chain 1."""
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:8]))
    mid = mid_of(event)
    tuning = Tuning(max_entries_per_invocation=2)
    assert [r.outcome for r in aws.provider(tuning=tuning).handle_record(_record(event), FakeContext())] == ["chunked"]
    [old] = drain_queue(aws.sqs, aws.manifest_queue)  # chain 0's continuation: its invocation fails, invisible
    assert json.loads(old["Body"])["chain"] == 0

    assert watchdog(aws, LATER).sweep().resumed == [mid]
    [takeover] = drain_queue(aws.sqs, aws.manifest_queue)
    assert [r.outcome for r in aws.provider(tuning=tuning).handle_record(_record(takeover["Body"]), FakeContext())] \
        == ["chunked"]
    assert positions_sent(aws) == [1, 2, 3, 4]

    [result] = aws.provider(tuning=tuning).handle_record(_record(old["Body"]), FakeContext())

    assert (result.outcome, result.entries, result.queued) == ("stale", 0, 0)
    assert positions_sent(aws) == []
    [live] = drain_queue(aws.sqs, aws.manifest_queue)  # one handle: chain 1's continuation
    assert json.loads(live["Body"])["chain"] == 1
    assert [r.outcome for r in aws.provider(tuning=tuning).handle_record(_record(live["Body"]), FakeContext())] \
        == ["chunked"]
    assert settle(aws, aws.provider(tuning=tuning)) == ["chunked", "complete"]
    assert positions_sent(aws) == [5, 6, 7, 8]  # each stretch sent once
    assert aws.audit.get_summary(mid)["chain"] == 1


def test_two_sweeps_leave_one_live_chain(aws, pems):
    """The watchdog resumes an idle manifest on every sweep: each sweep's continuation makes the
    previous one stale, so however many sweeps ran, one continuation does the work."""
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:6]))
    mid = mid_of(event)
    obj = event["Records"][0]["s3"]["object"]
    aws.audit.start_manifest(mid, vendor="generated", bucket="manifests", key=KEY, version=obj["versionId"],
                             etag=obj["eTag"], size=obj["size"])
    assert aws.audit.checkpoint(mid, 2, Progress(entries=2, queued=2), previous=0)
    for _ in range(2):
        assert watchdog(aws, LATER).sweep().resumed == [mid]
    first, second = drain_queue(aws.sqs, aws.manifest_queue)
    provider = aws.provider()

    outcomes = [r.outcome for m in (first, second) for r in provider.handle_record(_record(m["Body"]), FakeContext())]

    assert outcomes == ["stale", "complete"]
    assert positions_sent(aws) == [3, 4, 5, 6]
    assert drain_queue(aws.sqs, aws.manifest_queue) == []


def test_a_behind_invocation_on_a_finished_manifest_sends_nothing(aws, pems):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:6]))
    behind = aws.provider()
    real_checkpoint = behind.audit.checkpoint

    def finished_first(*args: Any, **kwargs: Any) -> bool:
        if not finished_first.done:
            finished_first.done = True
            assert real_checkpoint(mid_of(event), 6, Progress(entries=6, queued=6), previous=0, parse_done=True)
        return real_checkpoint(*args, **kwargs)

    finished_first.done = False  # type: ignore[attr-defined]
    behind.audit.checkpoint = finished_first  # type: ignore[method-assign]

    [result] = behind.handle_record(_record(event), FakeContext())

    assert result.outcome == "behind"
    assert drain_queue(aws.sqs, aws.manifest_queue) == []


# -- 4. SendMessageBatch answers are read entry by entry -------------------------------------------


class ScriptedSqs:
    """Answers SendMessageBatch with the given responses, in order (exact injected answers)."""

    def __init__(self, *answers: Any):
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        ids = [e["Id"] for e in Entries]
        self.calls.append(ids)
        answer = self.answers.pop(0)
        return answer(ids) if callable(answer) else answer


def _ok(ids: list[str]) -> dict[str, Any]:
    return {"Successful": [{"Id": i, "MessageId": f"msg-{i}", "MD5OfMessageBody": "0"} for i in ids], "Failed": []}


def _fill(sender: BatchSender, n: int) -> None:
    for i in range(1, n + 1):
        sender.add(str(i), f"body {i}")


def test_an_entry_missing_from_both_lists_is_retried(aws):
    sqs = ScriptedSqs({"Successful": _ok([str(i) for i in range(1, 11) if i != 5])["Successful"], "Failed": []}, _ok)
    sender = BatchSender(sqs, "q", sleep=lambda _s: None)
    _fill(sender, 10)

    sender.flush()

    assert sqs.calls == [[str(i) for i in range(1, 11)], ["5"]]
    assert sender.sent == 10


def test_an_entry_never_reported_successful_fails_the_send_after_the_attempts(aws):
    sqs = ScriptedSqs(*([{"Successful": [], "Failed": []}] * 3))
    sender = BatchSender(sqs, "q", attempts=3, sleep=lambda _s: None)
    _fill(sender, 2)

    with pytest.raises(ProviderError, match=r"^2 import message\(s\) not accepted by SQS after 3 attempts "
                                            r"\(1: missing from the answer; 2: missing from the answer\)$"):
        sender.flush()
    assert sqs.calls == [["1", "2"]] * 3 and sender.sent == 0


def test_a_failed_entry_with_an_unknown_id_is_an_error_not_the_end_of_the_retries(aws):
    sqs = ScriptedSqs({"Successful": _ok([str(i) for i in range(1, 11) if i != 5])["Successful"],
                       "Failed": [{"Id": "bogus", "SenderFault": False, "Code": "InternalError", "Message": "?"}]})
    sender = BatchSender(sqs, "q", sleep=lambda _s: None)
    _fill(sender, 10)

    with pytest.raises(ProviderError, match=r"^SendMessageBatch answered for entries it was not sent \(bogus\)"):
        sender.flush()
    assert sender.sent == 0


def test_a_partial_failure_is_retried_with_the_failed_entries_only(aws):
    sqs = ScriptedSqs({"Successful": _ok(["1", "3"])["Successful"],
                       "Failed": [{"Id": "2", "SenderFault": False, "Code": "InternalError", "Message": "retry"}]},
                      _ok)
    sender = BatchSender(sqs, "q", sleep=lambda _s: None)
    _fill(sender, 3)

    sender.flush()

    assert sqs.calls == [["1", "2", "3"], ["2"]] and sender.sent == 3


# -- 5. a parsed manifest whose completion check died with its invocation --------------------------


class KilledInvocation(BaseException):
    """The Lambda runtime stopping an invocation (not an error the provider could catch)."""


def test_a_redelivery_completes_a_parsed_manifest_whose_completion_check_was_killed(aws, pems):
    """The last checkpoint (parse_done) is applied and the invocation dies before ``try_complete``.

    The importer recorded every outcome before that checkpoint landed (its own completion
    check then found the manifest not parsed), so nothing else would complete it.
    """
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:6]))
    mid = mid_of(event)
    dying = aws.provider()

    def killed(*_args: Any, **_kwargs: Any) -> bool:
        raise KilledInvocation("killed right after the final checkpoint")

    dying.audit.try_complete = killed  # type: ignore[method-assign]
    with pytest.raises(KilledInvocation):
        dying.handle_record(_record(event), FakeContext())
    sent = [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]
    aws.audit.record_outcomes([OutcomeRecord(m.manifest_id, m.fingerprint, IMPORTED, vendor=m.vendor,
                                                   position=m.position, thing_name=m.thing_name) for m in sent])
    stuck = aws.audit.get_summary(mid)
    assert (stuck["state"], stuck["parse_done"], stuck["outstanding"]) == (QUEUED, True, 0)

    [result] = aws.provider().handle_record(_record(event), FakeContext())  # SQS redelivers the S3 event

    assert result.outcome == "skipped"
    done = aws.audit.get_summary(mid)
    assert (done["state"], done["imported"], done["entries"]) == (COMPLETE, 6, 6)
    assert drain_queue(aws.sqs, aws.import_queue) == []  # nothing parsed or sent again
