"""Sending import messages to SQS: ``BatchSender`` (SendMessageBatch, failed entries retried) and
``MessageTooLarge`` (an entry refused for SQS's size limit)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from thingpress.errors import Refused
from thingpress.messages import MAX_MESSAGE_BYTES
from thingpress.provider.failures import ProviderError

#: SendMessageBatch takes at most this many entries per call.
MAX_BATCH_ENTRIES = 10


class MessageTooLarge(Refused, ValueError):
    """An import message over SQS's size limit: its entry is refused (``BatchSender.add``)."""


class BatchSender:
    """Sends message bodies with SendMessageBatch: <= 10 entries and < 256 KiB per call.

    A body over SQS's size limit is refused by ``add`` with ``MessageTooLarge``
    before anything is buffered or sent; that is the only error ``add`` raises on
    its own account. Anything else (``flush``'s SDK errors) is a failure to retry.

    An entry counts as sent only when the answer lists its Id under ``Successful``;
    every other entry (listed under ``Failed``, or missing from the answer) stays
    buffered and is retried alone, with exponential backoff; anything still unsent
    after ``attempts`` raises ``ProviderError``. An answer naming an Id that was
    not sent raises ``ProviderError`` at once. Entries leave the buffer only once
    accepted, so an exception never drops them.
    """

    def __init__(self, sqs: Any, queue_url: str, *, attempts: int = 6, backoff: float = 0.05,
                 sleep: Callable[[float], None] = time.sleep):
        self.sqs = sqs
        self.queue_url = queue_url
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep
        self._entries: list[dict[str, str]] = []
        self._bytes = 0
        self.sent = 0
        self.calls = 0

    @staticmethod
    def check(entry_id: str, body: str) -> int:
        """The body's size in bytes; ``MessageTooLarge`` if SQS would refuse it."""
        size = len(body.encode())
        if size > MAX_MESSAGE_BYTES:
            raise MessageTooLarge(f"message {entry_id} is {size} bytes, over SQS's {MAX_MESSAGE_BYTES}-byte limit")
        return size

    def add(self, entry_id: str, body: str) -> None:
        """Buffer one message (sending a full batch first). ``MessageTooLarge``: refused, nothing done."""
        size = self.check(entry_id, body)
        if len(self._entries) == MAX_BATCH_ENTRIES or self._bytes + size > MAX_MESSAGE_BYTES:
            self.flush()
        self._entries.append({"Id": entry_id, "MessageBody": body})
        self._bytes += size

    def flush(self) -> None:
        """Send every buffered entry; raises ``ProviderError`` (or the SDK's error) if that fails."""
        attempt = 0
        while self._entries:
            pending = self._entries
            self.calls += 1
            out = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=pending)
            sent_ids = {e["Id"] for e in pending}
            accepted = {s.get("Id") for s in out.get("Successful") or []}
            reasons = {f.get("Id"): f"{f.get('Code')} {f.get('Message', '')}".strip() for f in out.get("Failed") or []}
            unknown = sorted(str(i) for i in (accepted | reasons.keys()) - sent_ids)
            if unknown:
                raise ProviderError(f"SendMessageBatch answered for entries it was not sent ({', '.join(unknown)}); "
                                    f"sent {', '.join(e['Id'] for e in pending)}")
            self.sent += len(accepted)
            self._entries = [e for e in pending if e["Id"] not in accepted]
            if not self._entries:
                self._bytes = 0
                return
            self._bytes = sum(len(e["MessageBody"].encode()) for e in self._entries)
            attempt += 1
            if attempt >= self.attempts:
                detail = "; ".join(f"{e['Id']}: {reasons.get(e['Id'], 'missing from the answer')}"
                                   for e in self._entries[:5])
                raise ProviderError(f"{len(self._entries)} import message(s) not accepted by SQS after "
                                    f"{self.attempts} attempts ({detail})")
            self.sleep(min(self.backoff * 2 ** (attempt - 1), 2.0))
