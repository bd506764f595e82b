"""Backpressure when the ``by_state`` index lags (issue 22, finding 9): the overshoot bound, reached and held.

A global secondary index is read eventually consistently ("Queries on global secondary indexes support
eventual consistency only": https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reading).
In-process moto lags its indexes here as AWS does (``index_lag`` fixture: 500 ms on a manual clock that
never moves, so everything a test writes is within the lag). The window: 2 minutes at 0.2 certificates/s,
24 certificates; two manifests of 24 entries each.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_fixtures import FakeContext, drain_queue, put_and_event
from events import sqs_event
from provider_helpers import generated_manifest

from thingpress import messages
from thingpress.audit.keys import manifest_id
from thingpress.audit.table import AuditTable
from thingpress.backpressure import Window, window_for, worst_backlog
from thingpress.settings import DEFAULT_IOT_TPS

SLOW = {**DEFAULT_IOT_TPS, "RegisterCertificateWithoutCA": 0.2}
MINUTES = 2
WINDOW = window_for(MINUTES, SLOW)


def _record(body: Any) -> Any:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    return SQSRecord(sqs_event(body)["Records"][0])


def queued(aws: Any) -> dict[str, int]:
    """Import messages in the queue, per manifest."""
    counts: dict[str, int] = {}
    for message in drain_queue(aws.sqs, aws.import_queue):
        mid = messages.decode(message["Body"]).manifest_id
        counts[mid] = counts.get(mid, 0) + 1
    return counts


def manifest(aws: Any, key: str, pems: list[bytes]) -> tuple[dict[str, Any], str]:
    event = put_and_event(aws.s3, aws.bucket, key, generated_manifest(pems))
    version = event["Records"][0]["s3"]["object"]["versionId"]
    return event, manifest_id("generated", "manifests", key, version)


class StartsAnotherOnFirstSend:
    """The SQS client of invocation A: on A's first ``SendMessageBatch`` (A has read the manifests in flight
    and admitted its room, nothing checkpointed yet) invocation B runs from start to end."""

    def __init__(self, client: Any, other: Any):
        self._client, self._other = client, other
        self.results: list[Any] = []

    def send_message_batch(self, **kwargs: Any) -> Any:
        if self._other is not None:
            other, self._other = self._other, None
            self.results.extend(other())
        return self._client.send_message_batch(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_the_window_and_the_bound_of_two_concurrent_admissions():
    assert WINDOW == Window(size=24, rate=0.2)
    assert worst_backlog(WINDOW, 1) == 24
    assert worst_backlog(WINDOW, 2) == 24 + 12          # the second reader's share is half the window
    assert worst_backlog(Window(6000, 10.0), 8) == 6000 + 3000 + 2000 + 1500 + 1200 + 1000 + 857 + 750


def test_two_manifests_starting_within_the_lag_share_one_window(aws, pems, index_lag):
    """B starts while A's summary is not in the index yet: B still counts A (and its 24 queued), so the queue
    holds one window. Counting from the index alone, B saw itself alone and queued a second window (48)."""
    index_lag.configure({"lag_ms": 500})
    provider = aws.provider(import_window_minutes=MINUTES, iot_tps=SLOW)
    event_a, mid_a = manifest(aws, "generated/a.txt", pems[:24])
    event_b, mid_b = manifest(aws, "generated/b.txt", pems[16:40])

    [a] = provider.handle_record(_record(event_a), FakeContext())
    assert (a.outcome, a.queued) == ("paused", 24)
    assert aws.audit.unfinished_manifests() == []      # the index: A is not there yet (within the lag)
    [b] = provider.handle_record(_record(event_b), FakeContext())

    assert (b.outcome, b.queued) == ("paused", 0)
    assert queued(aws) == {mid_a: 24}                   # one window: worst_backlog(WINDOW, 1)
    assert sorted(s["manifest_id"] for s in aws.audit.manifests_in_flight()) == sorted([mid_a, mid_b])


@pytest.mark.parametrize("lag_ms", [0, 500])
def test_an_admission_during_another_reaches_the_bound_and_the_lag_does_not_move_it(aws, pems, index_lag, lag_ms):
    """The bound is reached: A reads first (alone: the whole window), B starts while A is sending and before
    A's checkpoint (it counts A as parsing, with nothing queued): B takes its share, 12, A its 24. That is
    ``worst_backlog(window, 2)``, the same with the index lagging or not. Counting from the index alone,
    with the lag B took a whole window too (48)."""
    index_lag.configure({"lag_ms": lag_ms})
    event_a, mid_a = manifest(aws, "generated/a.txt", pems[:24])
    event_b, mid_b = manifest(aws, "generated/b.txt", pems[16:40])
    provider_b = aws.provider(import_window_minutes=MINUTES, iot_tps=SLOW)
    sqs_a = StartsAnotherOnFirstSend(aws.sqs, lambda: provider_b.handle_record(_record(event_b), FakeContext()))
    provider_a = aws.provider(sqs=sqs_a, import_window_minutes=MINUTES, iot_tps=SLOW)

    [a] = provider_a.handle_record(_record(event_a), FakeContext())

    [b] = sqs_a.results
    assert (a.outcome, a.queued, b.outcome, b.queued) == ("paused", 24, "paused", 12)
    assert queued(aws) == {mid_a: 24, mid_b: 12}
    assert 24 + 12 == worst_backlog(WINDOW, 2)


def test_the_index_alone_lets_each_new_manifest_take_a_whole_window(aws, pems, index_lag, monkeypatch):
    """What the bound was before the starts were read consistently: k manifests starting within the lag each
    see themselves alone, and the queue holds k windows (here k = 2: 48 of a window of 24)."""
    index_lag.configure({"lag_ms": 500})
    monkeypatch.setattr(AuditTable, "manifests_in_flight", lambda table: table.unfinished_manifests())
    provider = aws.provider(import_window_minutes=MINUTES, iot_tps=SLOW)
    event_a, mid_a = manifest(aws, "generated/a.txt", pems[:24])
    event_b, mid_b = manifest(aws, "generated/b.txt", pems[16:40])

    provider.handle_record(_record(event_a), FakeContext())
    [b] = provider.handle_record(_record(event_b), FakeContext())

    assert (b.outcome, b.queued) == ("paused", 24)
    assert queued(aws) == {mid_a: 24, mid_b: 24}
