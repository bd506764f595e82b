"""The SQS event source: Lambda's SQS poller, one :class:`MappingPoller` per event source mapping.

* **Batches as Lambda's poller builds them**: long polls of up to
  :data:`POLL_WAIT_SECONDS`, filled to the mapping's batch size with what is already
  there; the event is :func:`sqs_event`.
* **Partial batch responses.** With ``ReportBatchItemFailures`` only successful
  messages are deleted (an invalid response fails the whole batch, as in Lambda);
  a failed invocation deletes nothing, so its messages reappear after the visibility
  timeout and the emulator's SQS moves them to the DLQ after ``maxReceiveCount``
  (:func:`failed_message_ids`).
* **Concurrency.** ``concurrency`` slots, each with its warm worker (:mod:`.workers`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thingpress_cli.local.runner.code import CodeCache
from thingpress_cli.local.runner.model import MappingSpec, Outcome, Stats
from thingpress_cli.local.runner.workers import TMP_BUDGET, Worker, tmp_budget_available

if TYPE_CHECKING:
    from thingpress_cli.local.runner.cloud import Emulator

#: Long-poll wait; short enough that a stop or a redeploy is noticed quickly.
POLL_WAIT_SECONDS = 2


def sqs_event(messages: Iterable[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS poller passes to the function."""
    records = []
    for message in messages:
        records.append({
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                key: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [], "binaryListValues": [],
                    "dataType": value["DataType"],
                }
                for key, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        })
    return {"Records": records}


def failed_message_ids(outcome: Outcome, message_ids: list[str], report_batch_item_failures: bool) -> set[str]:
    """The messages to leave in the queue after an invocation (Lambda's rules).

    A failed invocation (error, timeout, crash) keeps the whole batch. With
    ``ReportBatchItemFailures`` a successful answer keeps the listed
    ``batchItemFailures``; an answer naming an unknown or empty ``itemIdentifier``
    keeps the whole batch. Without it, success deletes everything.
    """
    if not outcome.ok:
        return set(message_ids)
    if not report_batch_item_failures or outcome.result is None:
        return set()
    failures = outcome.result.get("batchItemFailures") if isinstance(outcome.result, dict) else None
    if not failures:
        return set()
    ids = [item.get("itemIdentifier") if isinstance(item, dict) else None for item in failures]
    if any(not i or i not in message_ids for i in ids):
        return set(message_ids)
    return set(ids)  # type: ignore[arg-type]


class MappingPoller:
    """The poller of one mapping: ``concurrency`` slots, each with its warm worker."""

    def __init__(self, mapping: MappingSpec, emulator: Emulator, cache: CodeCache, log_dir: Path,
                 report: Callable[[str], None], stats: Stats, poll_wait: int = POLL_WAIT_SECONDS) -> None:
        self.mapping = mapping
        self.poll_wait = poll_wait
        self.emulator = emulator
        self.cache = cache
        self.log = log_dir / f"{mapping.function.name}.log"
        self.report = report
        self.stats = stats
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._slot, name=f"{mapping.function.name}-{i}", daemon=True)
                         for i in range(mapping.concurrency)]
        self._workers: list[Worker] = []

    def start(self) -> None:
        if self.mapping.function.architectures and os.uname().machine not in ("x86_64", "amd64") and "x86_64" in self.mapping.function.architectures:
            self.report(f"{self.mapping.function.name}: built for {self.mapping.function.architectures}, host is {os.uname().machine}")
        for thread in self._threads:
            thread.start()

    def stop(self, wait: bool = True) -> None:
        """Stop now (the runner's shutdown): no new batch, and the workers killed, their invocations with
        them; ``wait``: first wait for the slots (a long poll, an invocation) to end."""
        self._stop.set()
        if wait:
            for thread in self._threads:
                thread.join(timeout=self.poll_wait + self.mapping.function.timeout + 5)
        for worker in self._workers:
            worker.stop()

    def retire(self) -> None:
        """Stop taking batches for a mapping or function that changed or went: each slot ends the invocation
        it has in hand on its worker (its messages deleted or left as its outcome says), then stops it. An
        update does not abort an invocation on AWS: while it is in progress "you can't modify the function,
        but you can still invoke it" (Lambda API reference, UpdateFunctionConfiguration)."""
        self._stop.set()

    def done(self) -> bool:
        """True once every slot has ended (after :meth:`retire` or :meth:`stop`)."""
        return not any(thread.is_alive() for thread in self._threads)

    def _tmp_dir(self) -> Path | None:
        """This slot's /tmp mount point, or None (reported once) where mounts are not permitted."""
        root = self.log.parent.parent / "tmp"
        why_not = tmp_budget_available(root / ".probe")
        if why_not is not None:
            if not TMP_BUDGET.get("reported"):
                TMP_BUDGET["reported"] = "yes"
                self.report(f"workers run without a /tmp budget: {why_not}")
            return None
        return root / f"{self.mapping.function.name}-{threading.current_thread().name.rsplit('-', 1)[-1]}"

    def _receive(self, sqs: Any) -> list[dict[str, Any]]:
        wanted = self.mapping.batch_size
        messages: list[dict[str, Any]] = []
        wait = self.poll_wait
        while len(messages) < wanted and not self._stop.is_set():
            answer = sqs.receive_message(
                QueueUrl=self.mapping.queue_url, MaxNumberOfMessages=min(10, wanted - len(messages)),
                WaitTimeSeconds=wait, AttributeNames=["All"], MessageAttributeNames=["All"],
            )
            got = answer.get("Messages", [])
            messages += got
            if len(got) < 10:
                break
            wait = 0  # fill a large batch with what is already there, without waiting
        return messages

    def _slot(self) -> None:
        spec = self.mapping.function
        sqs = self.emulator.client("sqs")
        worker: Worker | None = None
        while not self._stop.is_set():
            try:
                messages = self._receive(sqs)
                if not messages:
                    continue
                if worker is None:
                    task_root, opt = self.cache.layout(spec)
                    worker = Worker(spec, task_root, opt, self.emulator.endpoint, self.emulator.region, self.log,
                                    tmp_dir=self._tmp_dir())
                    self._workers.append(worker)
                began = time.monotonic()
                outcome = worker.invoke(sqs_event(messages, self.mapping.queue_arn, self.emulator.region))
                ids = [m["MessageId"] for m in messages]
                failed = failed_message_ids(outcome, ids, self.mapping.report_batch_item_failures)
                done = [m for m in messages if m["MessageId"] not in failed]
                for start in range(0, len(done), 10):
                    chunk = done[start:start + 10]
                    sqs.delete_message_batch(QueueUrl=self.mapping.queue_url, Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                    ])
                overhead = (time.monotonic() - began) * 1000 - outcome.duration_ms
                self.stats.add(invocations=1, failures=0 if outcome.ok else 1, messages=len(messages),
                               deleted=len(done), overhead_ms=max(0.0, overhead))
                if not outcome.ok and outcome.error is not None:
                    self.report(f"{spec.name}: invocation failed ({len(messages)} messages left to retry): "
                                f"{json.dumps(outcome.error)}")
            except Exception as error:  # noqa: BLE001 - the poller must outlive any one failure
                if not self._stop.is_set():
                    self.report(f"{spec.name}: poller error: {type(error).__name__}: {error}")
                    self._stop.wait(1.0)
        if worker is not None:
            worker.stop()
