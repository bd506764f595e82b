"""The provider under backpressure: it never enqueues past its room and pauses with the exact delay."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_fixtures import FakeContext, drain_queue, put_and_event
from events import sqs_event
from provider_helpers import generated_manifest

from thingpress import messages
from thingpress.audit.chain import Handle
from thingpress.audit.keys import SUMMARY_SK, manifest_id, manifest_pk, to_item
from thingpress.audit.states import IMPORTED
from thingpress.audit.summaries import Progress
from thingpress.settings import DEFAULT_IOT_TPS

KEY = "generated/big.txt"
#: 0.2 certificates/s for one minute: a window of 12 certificates (stride 3 alone).
SLOW = {**DEFAULT_IOT_TPS, "RegisterCertificateWithoutCA": 0.2}


class RecordingSqs:
    """The SQS client, recording every SendMessage (to see DelaySeconds)."""

    def __init__(self, client: Any):
        self._client = client
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **kwargs: Any) -> Any:
        self.sent.append(kwargs)
        return self._client.send_message(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def positions(aws: Any) -> list[int]:
    return sorted(messages.decode(m["Body"]).position for m in drain_queue(aws.sqs, aws.import_queue))


def finish(aws: Any, mid: str, count: int, start: int) -> None:
    """The importer records outcomes for ``count`` certificates (fake fingerprints: counters only)."""
    for position in range(start, start + count):
        aws.audit.record_outcome(mid, f"fp{position}", IMPORTED, vendor="generated", position=position,
                                 thing_name=f"t{position}")


def setup(aws: Any, pems: list[bytes], count: int) -> tuple[Any, RecordingSqs, dict[str, Any], str]:
    sqs = RecordingSqs(aws.sqs)
    provider = aws.provider(sqs=sqs, import_window_minutes=1, iot_tps=SLOW)
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:count]))
    obj = event["Records"][0]["s3"]["object"]
    return provider, sqs, event, manifest_id("generated", "manifests", KEY, obj["versionId"])


def test_a_manifest_alone_enqueues_one_window_then_pauses_with_the_exact_delay(aws, pems):
    provider, sqs, event, mid = setup(aws, pems, 30)

    [result] = provider.handle_record(_record(event), FakeContext())

    assert (result.outcome, result.queued) == ("paused", 12)
    assert positions(aws) == list(range(1, 13))  # never past the window
    summary = aws.audit.get_summary(mid)
    assert (summary["checkpoint"], summary["queued"], summary["outstanding"], summary["parse_done"]) == (12, 12, 12, False)
    # Full window: a stride (3 certificates) must drain at 0.2/s: 15 s.
    [pause] = sqs.sent
    assert pause["QueueUrl"] == aws.manifest_queue and pause["DelaySeconds"] == 15
    # The pause is noted: the watchdog sees the manifest alive until it resumes.
    assert _epoch(summary["paused_until"]) - _epoch(summary["updated_at"]) == 15


def test_a_pause_without_progress_still_tells_the_watchdog_the_manifest_is_alive(aws, pems):
    provider, sqs, event, mid = setup(aws, pems, 30)
    provider.handle_record(_record(event), FakeContext())
    positions(aws)
    aws.dynamodb.update_item(TableName=aws.audit.table, Key=to_item({"pk": manifest_pk(mid),
                                                                           "sk": SUMMARY_SK}),
                             UpdateExpression="SET updated_at = :old",
                             ExpressionAttributeValues=to_item({":old": "2020-01-01T00:00:00Z"}))

    [again] = provider.handle_record(_record(sqs.sent[-1]["MessageBody"]), FakeContext())

    assert (again.outcome, again.queued) == ("paused", 0)
    assert aws.audit.get_summary(mid)["updated_at"] > "2026"


def test_a_pause_that_finds_another_invocation_ahead_stops_and_sends_nothing(aws, pems, monkeypatch):
    """Between this invocation's commit and its pause note, another one commits: this one is behind,
    and the one ahead carries the manifest on (one live chain: no second handle)."""
    provider, sqs, event, mid = setup(aws, pems, 30)
    note = provider.audit.note_paused

    def overtaken(mid_: str, **kwargs: Any) -> bool:
        other = Progress(entries=1, queued=0)
        assert aws.audit.checkpoint(mid_, kwargs["checkpoint"] + 1, other, previous=kwargs["checkpoint"])
        return note(mid_, **kwargs)

    monkeypatch.setattr(provider.audit, "note_paused", overtaken)
    [result] = provider.handle_record(_record(event), FakeContext())

    assert result.outcome == "behind"
    assert sqs.sent == []
    assert "paused_until" not in aws.audit.get_summary(mid)


def test_a_pause_note_of_a_stale_handle_is_refused(aws, pems):
    """The watchdog took the manifest over (chain 1) while a chain-0 invocation was about to pause."""
    provider, sqs, event, mid = setup(aws, pems, 30)
    aws.audit.start_manifest(mid, vendor="generated", bucket="b", key="k", version="v", etag=None, size=1)
    seen = aws.audit.get_summary(mid)
    taken = aws.audit.bump_chain(mid, seen=seen, link="w1")
    assert taken == Handle(1, "w1")

    assert not aws.audit.note_paused(mid, checkpoint=0, seconds=60, handle=Handle())
    assert aws.audit.note_paused(mid, checkpoint=0, seconds=60, handle=taken)
    assert aws.audit.bump_chain(mid, seen=seen, link="w2") is None  # a second watchdog saw chain 0: refused


def test_a_paused_manifest_resumes_only_with_a_stride_free_and_finishes_exactly_once(aws, pems):
    provider, sqs, event, mid = setup(aws, pems, 30)
    provider.handle_record(_record(event), FakeContext())
    sent = positions(aws)
    cont = sqs.sent[-1]["MessageBody"]

    # Nothing finished yet: paused again, nothing sent, same delay.
    [again] = provider.handle_record(_record(cont), FakeContext())
    assert (again.outcome, again.queued, positions(aws)) == ("paused", 0, [])
    assert sqs.sent[-1]["DelaySeconds"] == 15
    cont = sqs.sent[-1]["MessageBody"]

    # Two finished: less than a stride free, still paused; the delay covers the last one.
    finish(aws, mid, 2, 1)
    [still] = provider.handle_record(_record(cont), FakeContext())
    assert (still.outcome, still.queued) == ("paused", 0) and sqs.sent[-1]["DelaySeconds"] == 5
    cont = sqs.sent[-1]["MessageBody"]

    # Five finished: room for 5 more, exactly.
    finish(aws, mid, 3, 3)
    [refill] = provider.handle_record(_record(cont), FakeContext())
    assert (refill.outcome, refill.queued) == ("paused", 5)
    sent += positions(aws)
    assert sent == list(range(1, 18))

    # The importer catches up: the rest goes out and the manifest is parsed.
    while True:
        summary = aws.audit.get_summary(mid)
        finish(aws, mid, summary["queued"] - (summary["imported"]), summary["imported"] + 1)
        cont = sqs.sent[-1]["MessageBody"]
        [step] = provider.handle_record(_record(cont), FakeContext())
        sent += positions(aws)
        if step.outcome == "complete":
            break
        assert step.outcome == "paused" and step.queued == 12
    assert sent == list(range(1, 31))
    summary = aws.audit.get_summary(mid)
    assert (summary["entries"], summary["queued"], summary["parse_done"]) == (30, 30, True)


def test_a_second_manifest_gets_a_fair_share_within_the_window(aws, pems):
    provider, sqs, event, mid = setup(aws, pems, 30)
    provider.handle_record(_record(event), FakeContext())     # the big one: 12 of 12 queued
    cont = sqs.sent[-1]["MessageBody"]
    positions(aws)
    finish(aws, mid, 6, 1)                                     # 6 outstanding
    small = put_and_event(aws.s3, aws.bucket, "generated/small.txt", generated_manifest(pems[30:40]))

    [result] = provider.handle_record(_record(small), FakeContext())

    # Two manifests parsing: each may hold its share (window 12 / 2, at least the floor of 10), but the
    # big one holds 6 of the window of 12, so 6 are free.
    assert (result.outcome, result.queued) == ("paused", 6)
    assert len(positions(aws)) == 6
    # ... and the big one, counted with the small one, finds the window full and enqueues nothing.
    [big] = provider.handle_record(_record(cont), FakeContext())
    assert (big.outcome, big.queued, positions(aws)) == ("paused", 0, [])


def test_the_pause_is_never_longer_than_the_invocation(aws, pems):
    """A pause outlasting two provider timeouts would look like a stall to the watchdog."""
    _provider, sqs_, event, _mid = setup(aws, pems, 30)
    provider = aws.provider(sqs=sqs_, import_window_minutes=1,
                            iot_tps={**DEFAULT_IOT_TPS, "RegisterCertificateWithoutCA": 0.01})
    # A window of 1 certificate, draining at 0.01/s: 100 s to free it; the invocation had 30 s.
    [result] = provider.handle_record(_record(event), FakeContext(remaining_ms=[30_000]))
    assert (result.outcome, result.queued) == ("paused", 1) and sqs_.sent[-1]["DelaySeconds"] == 30


def test_without_a_window_nothing_pauses(aws, pems):
    provider, sqs, event, _mid = setup(aws, pems, 30)
    provider = aws.provider(sqs=sqs, import_window_minutes=0, iot_tps=SLOW)
    [result] = provider.handle_record(_record(event), FakeContext())
    assert (result.outcome, result.queued, sqs.sent) == ("complete", 30, [])


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _record(body: Any) -> Any:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    return SQSRecord(sqs_event(body)["Records"][0])
