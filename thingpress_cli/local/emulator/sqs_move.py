"""SQS message move tasks (DLQ redrive) for the emulator: moto 5.2 has none.

Implements ``StartMessageMoveTask``, ``ListMessageMoveTasks`` and
``CancelMessageMoveTask`` as the Amazon SQS API Reference describes them:

* https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html
* https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListMessageMoveTasks.html
* https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CancelMessageMoveTask.html
* https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListMessageMoveTasksResultEntry.html

Rules kept (each covered by ``tests/unit/local/emulator/test_sqs_move.py``):

* ``SourceArn`` is required and must be a queue that is the dead-letter queue of
  another queue (a queue whose redrive policy names it); otherwise the request is
  refused. A missing source or destination queue is ``ResourceNotFoundException``.
* ``DestinationArn`` is optional: without it every message goes back to the queue
  it was dead-lettered from. (Each thingpress DLQ has one source queue; a DLQ with
  several sources and no destination is refused here, since moto does not record a
  message's ``DeadLetterQueueSourceArn``.)
* ``MaxNumberOfMessagesPerSecond`` is optional, at most 500 (and at least 1);
  without it the rate is chosen by the service (here: 500).
* One active task per source queue: a second start while one is ``RUNNING`` is refused.
* The task is asynchronous: the answer is a ``TaskHandle``; the move runs on a
  thread. ``ApproximateNumberOfMessagesToMove`` is the source's visible messages
  when the task starts; moved messages are sent to the destination as new messages
  (same body and message attributes, receive count 0) and deleted from the source.
* ``ListMessageMoveTasks`` returns the most recent tasks of a source queue, newest
  first: ``MaxResults`` defaults to 1, at most 10. ``DestinationArn`` and
  ``MaxNumberOfMessagesPerSecond`` appear only if they were given at start,
  ``FailureReason`` only for ``FAILED``; statuses ``RUNNING``, ``COMPLETED``,
  ``CANCELLING``, ``CANCELLED``, ``FAILED``.
* ``CancelMessageMoveTask`` works only while the task is ``RUNNING`` (otherwise
  ``UnsupportedOperation``); an unknown handle is ``ResourceNotFoundException``.
  Messages already moved stay moved; it answers ``ApproximateNumberOfMessagesMoved``.

Where the reference names no error code for a refusal (source not a DLQ, a task
already running, a rate out of range) the codes used are those the operation lists:
``UnsupportedOperation`` for the first two, ``InvalidParameterValue`` for the rate.

:func:`install` adds the three actions to moto's ``SQSResponse``; :data:`TASKS`
holds the emulator's tasks (tests install a ``MoveTasks`` of their own).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.sqs.exceptions import InvalidParameterValue, MissingParameter, SQSException

from thingpress.arns import Arn
from thingpress_cli.local.emulator.guard import Patched

RUNNING, COMPLETED, CANCELLING, CANCELLED, FAILED = "RUNNING", "COMPLETED", "CANCELLING", "CANCELLED", "FAILED"
MAX_RATE = 500
MAX_RESULTS = 10


class ResourceNotFound(SQSException):
    def __init__(self, message: str):
        super().__init__("ResourceNotFoundException", message)


class UnsupportedOperation(SQSException):
    def __init__(self, message: str):
        super().__init__("UnsupportedOperation", message)


@dataclass
class MoveTask:
    handle: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    started_ms: int
    to_move: int = 0
    moved: int = 0
    status: str = RUNNING
    failure: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TaskHandle": self.handle, "Status": self.status, "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved, "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.destination_arn is not None:
            out["DestinationArn"] = self.destination_arn
        if self.rate is not None:
            out["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.status == FAILED:
            out["FailureReason"] = self.failure
        return out


def _queue_name(arn: str) -> str:
    try:
        parsed = Arn.parse(arn)
    except ValueError:
        parsed = None
    if parsed is None or parsed.service != "sqs" or ":" in parsed.resource:
        raise InvalidParameterValue(f"Value {arn} for parameter SourceArn is invalid. Reason: not an SQS queue ARN.")
    return parsed.resource


class MoveTasks:
    """Every move task of the emulator, by handle, and the threads that run them.

    ``before_move`` (tests) is called before each message is moved, on the task's
    thread: a test can hold a task at an exact point with an ``Event``.
    """

    def __init__(self, sleep: Callable[[float], None] = time.sleep):
        self.sleep = sleep
        self.before_move: Callable[[MoveTask], None] = lambda task: None
        self._lock = threading.Lock()
        self._tasks: dict[str, MoveTask] = {}
        self._threads: dict[str, threading.Thread] = {}

    def reset(self) -> None:
        with self._lock:
            for task in self._tasks.values():
                task.cancel.set()
            self._tasks.clear()
            self._threads.clear()

    def join(self, handle: str, timeout: float | None = None) -> None:
        thread = self._threads.get(handle)
        if thread is not None:
            thread.join(timeout)

    # -- the three operations -------------------------------------------------

    def start(self, backend: Any, source_arn: str | None, destination_arn: str | None, rate: Any) -> str:
        if not source_arn:
            raise MissingParameter("SourceArn")
        source = self._queue(backend, source_arn, "source")
        if rate is not None:
            rate = int(rate)
            if not 1 <= rate <= MAX_RATE:
                raise InvalidParameterValue(f"Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid. "
                                            f"Reason: must be between 1 and {MAX_RATE}.")
        origins = backend.list_dead_letter_source_queues(source.name)
        if not origins:
            raise UnsupportedOperation("Source queue must be configured as a Dead Letter Queue.")
        if destination_arn:
            self._queue(backend, destination_arn, "destination")
        elif len(origins) > 1:
            raise UnsupportedOperation("The dead-letter queue has several source queues: give a DestinationArn.")
        with self._lock:
            if any(t.source_arn == source_arn and t.status in (RUNNING, CANCELLING) for t in self._tasks.values()):
                raise UnsupportedOperation("There is already a task running. Only one active task is allowed for "
                                           "a source queue arn at a given time.")
            handle = base64.b64encode(json.dumps({"taskId": str(uuid.uuid4()), "sourceArn": source_arn}).encode()
                                      ).decode()
            task = MoveTask(handle, source_arn, destination_arn or None, rate, int(time.time() * 1000),
                            to_move=source.approximate_number_of_messages)
            self._tasks[handle] = task
        destination = destination_arn or origins[0].queue_arn
        thread = threading.Thread(target=self._run, args=(backend, task, source, _queue_name(destination)),
                                  name=f"sqs-move-{source.name}", daemon=True)
        self._threads[handle] = thread
        thread.start()
        return handle

    def list(self, backend: Any, source_arn: str | None, max_results: Any) -> list[dict[str, Any]]:
        if not source_arn:
            raise MissingParameter("SourceArn")
        self._queue(backend, source_arn, "source")
        limit = 1 if max_results is None else int(max_results)
        if not 1 <= limit <= MAX_RESULTS:
            raise InvalidParameterValue(f"Value {limit} for parameter MaxResults is invalid. "
                                        f"Reason: must be between 1 and {MAX_RESULTS}.")
        with self._lock:
            tasks = [t for t in self._tasks.values() if t.source_arn == source_arn]
        tasks.sort(key=lambda t: t.started_ms, reverse=True)  # dicts keep insertion order: stable for equal stamps
        return [t.entry() for t in tasks[:limit]]

    def cancel(self, handle: str | None) -> int:
        if not handle:
            raise MissingParameter("TaskHandle")
        with self._lock:
            task = self._tasks.get(handle)
            if task is None:
                raise ResourceNotFound("Task does not exist.")
            if task.status != RUNNING:
                raise UnsupportedOperation(f"Only active tasks can be cancelled; this task is {task.status}.")
            task.status = CANCELLING
            task.cancel.set()
            return task.moved

    # -- the move ------------------------------------------------------------------

    @staticmethod
    def _queue(backend: Any, arn: str, what: str) -> Any:
        name = _queue_name(arn)
        queue = backend.queues.get(name)
        if queue is None or queue.queue_arn != arn:
            raise ResourceNotFound(f"The {what} queue {arn} does not exist.")
        return queue

    def _run(self, backend: Any, task: MoveTask, source: Any, destination: str) -> None:
        interval = 1.0 / (task.rate or MAX_RATE)
        try:
            while task.moved < task.to_move and not task.cancel.is_set():
                self.before_move(task)
                if task.cancel.is_set():
                    break
                message = self._take(source)
                if message is None:
                    break
                backend.send_message(destination, message.body, message_attributes=message.message_attributes)
                with self._lock:
                    task.moved += 1
                self.sleep(interval)
        except Exception as exc:  # noqa: BLE001 -- a task that breaks is FAILED with the reason, as AWS reports it
            with self._lock:
                task.status, task.failure = FAILED, f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            task.status = CANCELLED if task.cancel.is_set() else COMPLETED

    @staticmethod
    def _take(queue: Any) -> Any:
        """Remove and return the first visible message of ``queue`` (None if there is none)."""
        now = time.time() * 1000.0
        with queue._messages_lock:
            for message in queue._messages:
                if now > message.visible_at and not now < message.delayed_until:
                    queue._messages.remove(message)
                    queue.pending_messages.discard(message)
                    return message
        return None


TASKS = MoveTasks()

#: What :func:`install` adds the three actions to.
PATCHED = (Patched("moto.sqs.responses", "SQSResponse"),)


def install(tasks: MoveTasks = TASKS) -> None:
    """Add the three actions to moto's ``SQSResponse`` (before its method names are first read)."""
    from moto.core.responses import ActionResult
    from moto.sqs.responses import SQSResponse

    def start_message_move_task(self: Any) -> Any:
        handle = tasks.start(self.sqs_backend, self._get_param("SourceArn"), self._get_param("DestinationArn"),
                             self._get_param("MaxNumberOfMessagesPerSecond"))
        return ActionResult({"TaskHandle": handle})

    def list_message_move_tasks(self: Any) -> Any:
        return ActionResult({"Results": tasks.list(self.sqs_backend, self._get_param("SourceArn"),
                                                   self._get_param("MaxResults"))})

    def cancel_message_move_task(self: Any) -> Any:
        return ActionResult({"ApproximateNumberOfMessagesMoved": tasks.cancel(self._get_param("TaskHandle"))})

    SQSResponse.start_message_move_task = start_message_move_task  # type: ignore[attr-defined]
    SQSResponse.list_message_move_tasks = list_message_move_tasks  # type: ignore[attr-defined]
    SQSResponse.cancel_message_move_task = cancel_message_move_task  # type: ignore[attr-defined]
    from moto.core import responses

    clear = getattr(responses.method_names_from_class, "cache_clear", None)  # speed_up_moto's cache, if any
    if clear is not None:
        clear()
