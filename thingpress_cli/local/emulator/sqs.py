"""SQS as AWS runs it: queues changed under their lock, and no delivery to Lambda but the runner's.

* **SQS queues changed under their lock** (:func:`lock_sqs_queues`). moto's
  ``Queue.delete_message`` rebuilds the queue's message list and assigns it back,
  without the lock ``add_message`` appends under. One delete racing one send
  cannot lose the send (CPython switches threads only at a loop's back-jump, and
  the delete's loop then sees the appended message), but two overlapping deletes
  can: the second one assigns its rebuilt list while the first is still copying
  the old one; a ``SendMessageBatch`` that lands on the second's list between
  them vanishes when the first assigns its copy, and the message the second
  deleted comes back (seen: ten import messages of one batch vanished while the
  importer deleted its own). And ``ReceiveMessage``, when it moves a message
  past ``maxReceiveCount`` to the dead-letter queue, removes it from the list in
  place: a delete copying that list meanwhile skips the next message (lost) and
  keeps the moved one (now in both queues). Deletes and receives (with the DLQ
  move) take the queue's lock, so each sees and leaves a whole list.
* **No built-in Lambda delivery from SQS** (:func:`no_lambda_delivery`). moto delivers
  a queue's messages to its event source mappings itself on ``SendMessage`` (and needs
  Docker to run the function); the thingpress runner is the one consumer, so that
  delivery is turned off and messages stay in the queue for the runner to poll.

The other SQS rules: ``SetQueueAttributes`` (:mod:`.sqs_rules`), message move tasks
(:mod:`.sqs_move`); the cost of receives and counts: :mod:`.speed`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from thingpress_cli.local.emulator.guard import Patched
from thingpress_cli.local.emulator.usage import USAGE

PATCHED = (
    Patched("moto.sqs.models", "Queue.delete_message", ("self", "receipt_handle")),
    Patched("moto.sqs.models", "SQSBackend.receive_message",
            ("self", "queue_name", "count", "wait_seconds_timeout", "visibility_timeout", "message_attribute_names")),
    Patched("moto.sqs.models", "Queue.lambda_event_source_mappings", instance=True),
)


def _under_queue_lock(method: Callable[..., Any]) -> Callable[..., Any]:
    """A ``Queue`` method run under the lock moto's ``add_message`` appends under."""
    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._messages_lock:
            return method(self, *args, **kwargs)

    return locked


def _receive_under_queue_lock(receive_message: Callable[..., Any]) -> Callable[..., Any]:
    """``SQSBackend.receive_message`` run under the queue's lock, its move to the DLQ included.

    The lock is moto's ``Condition`` over an ``RLock``: a long poll's wait
    (``Queue.wait_for_messages``, reentrant) releases it fully while it waits, so
    sends and deletes go on during the poll. The DLQ's own lock is taken inside
    (its ``add_message``): the order is always source queue, then its DLQ. A receive that finds
    no message is counted as such on the meter (:mod:`.usage`).
    """
    @functools.wraps(receive_message)
    def receive(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        with self.get_queue(queue_name)._messages_lock:
            messages = receive_message(self, queue_name, *args, **kwargs)
        if not messages:
            USAGE.add(sqs_empty_receives=1)  # metered apart from the work (usage.py)
        return messages

    return receive


def lock_sqs_queues() -> None:
    """Make moto's SQS deletes and receives take the queue's lock (see the module notes)."""
    from moto.sqs.models import Queue, SQSBackend

    Queue.delete_message = _under_queue_lock(Queue.delete_message)  # type: ignore[method-assign]
    SQSBackend.receive_message = _receive_under_queue_lock(SQSBackend.receive_message)  # type: ignore[method-assign]


def no_lambda_delivery() -> None:
    """moto's SQS keeps every message for the runner: no delivery to event source mappings of its own."""
    from moto.sqs.models import Queue

    # moto's Queue.send_message hands messages to queue.lambda_event_source_mappings
    # and deletes them; this class-level property makes that mapping always empty
    # (writes are dropped), so the ESM is still stored by moto's Lambda (and listed
    # by list_event_source_mappings) but the messages stay for the runner.
    Queue.lambda_event_source_mappings = property(  # type: ignore[assignment]
        lambda self: {}, lambda self, value: None
    )


def install() -> None:
    """Queues changed under their lock; messages kept for the runner."""
    lock_sqs_queues()
    no_lambda_delivery()
