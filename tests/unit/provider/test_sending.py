"""Sending import messages (``thingpress.provider.sending``): ``BatchSender``'s batches and size limit."""

from __future__ import annotations

import pytest


def test_batches_respect_the_256_kib_payload_limit(aws):
    from thingpress.provider.sending import BatchSender

    calls: list[int] = []

    class Recorder:
        def send_message_batch(self, QueueUrl, Entries):  # noqa: N803
            calls.append(sum(len(e["MessageBody"].encode()) for e in Entries))
            assert len(Entries) <= 10
            return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    sender = BatchSender(Recorder(), "q")
    for i in range(9):
        sender.add(str(i), "x" * 60_000)
    sender.flush()
    assert calls == [240_000, 240_000, 60_000]
    assert sender.sent == 9
    with pytest.raises(ValueError, match="over SQS's 262144-byte limit"):
        sender.add("big", "x" * (256 * 1024 + 1))
