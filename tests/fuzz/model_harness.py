"""The model-based test's harness: a model SQS, fault-injecting clients, a step scheduler.

``test_model_exactly_once`` drives the real provider and importer logic against
in-process moto (S3, DynamoDB, IoT) and this module's model of SQS. Every AWS call
the functions make goes through a ``FaultyClient``, which is where a fault planned
by hypothesis strikes and where a ``Scheduler`` may switch between two invocations.

Faults (``KINDS``), each at one planned call:

* ``crash_before`` / ``crash_after``: the invocation dies (``Crash``, a
  ``BaseException`` nothing in the functions catches) before the request is sent,
  or after AWS applied it and before the answer is used;
* ``ambiguous``: AWS applies the request, the answer is lost, botocore retries the
  identical request and the function sees the retry's answer (for an operation
  with an idempotency token, e.g. ``TransactWriteItems``' ``ClientRequestToken``,
  AWS answers the retry with the first outcome);
* ``ambiguous_error``: applied, and the caller gets a 500 ``InternalServerError``
  (botocore's retries used up);
* ``throttle``: not applied, ``ThrottlingException`` (400) to the caller;
* ``sdk_value_error``: not applied, a ``ValueError`` from the HTTP layer
  (``http.client``/``urllib3`` raise ``ValueError("I/O operation on closed file.")``
  on a connection closed under them), as the caller gets it: wrapped by botocore's
  ``URLLib3Session.send`` in ``HTTPClientError``, an SDK error that is not a ``ClientError``;
* ``sdk_serializer_error``: not applied, a bare ``ValueError`` from ``SendMessageBatch``
  before anything is sent (botocore's serializer refusing a parameter value; issue 10's
  defect 1 took it for the oversize refusal);
* ``partial_batch``: ``SendMessageBatch`` applies some entries and reports the others
  in ``Failed`` (``InternalError``, not the sender's fault);
* ``batch_omits``: ``SendMessageBatch`` drops one entry and lists it in neither
  ``Successful`` nor ``Failed`` (a malformed answer the sender must treat as failed);
* ``conflict``: a DynamoDB write meets an ongoing transaction on one of its items
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling):
  nothing is applied; ``PutItem``/``UpdateItem``/``DeleteItem`` get
  ``TransactionConflictException``, ``TransactWriteItems`` gets ``TransactionCanceledException``
  whose ``CancellationReasons`` say ``TransactionConflict`` for one item (``detail`` picks it)
  and ``None`` for the others. It only strikes those four APIs (named, or any of them).

Every error a fault raises is built as botocore builds it (``client_error``: the client's
modelled exception class, the parsed ``Error``/``ResponseMetadata`` and the error shape's
own fields at the top level) and remembered (``FaultPlan.injected``): the test lets an
invocation fail with an injected error, or one caused by it, and with nothing else.

Duplicate delivery and two invocations on one message are the state machine's
rules (``ModelQueue.duplicate`` and ``Scheduler.run``).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError

from thingpress.messages import MAX_MESSAGE_BYTES

KINDS = ("crash_before", "crash_after", "ambiguous", "ambiguous_error", "throttle", "sdk_value_error",
         "sdk_serializer_error", "partial_batch", "batch_omits", "conflict")
#: kinds that only make sense on SendMessageBatch: they always target it.
BATCH_KINDS = frozenset({"partial_batch", "batch_omits", "sdk_serializer_error"})
#: the DynamoDB writes a transaction conflict can strike.
CONFLICT_APIS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"})

#: client method -> AWS API name, for every call the provider, importer and watchdog make.
APIS = {
    "get_object": "GetObject", "head_object": "HeadObject", "put_object": "PutObject",
    "put_item": "PutItem", "delete_item": "DeleteItem", "get_item": "GetItem", "update_item": "UpdateItem", "query": "Query", "scan": "Scan",
    "transact_write_items": "TransactWriteItems", "batch_write_item": "BatchWriteItem",
    "send_message": "SendMessage", "send_message_batch": "SendMessageBatch",
    "get_queue_attributes": "GetQueueAttributes", "receive_message": "ReceiveMessage",
    "delete_message": "DeleteMessage",
    "register_certificate_without_ca": "RegisterCertificateWithoutCA", "create_thing": "CreateThing",
    "attach_thing_principal": "AttachThingPrincipal", "attach_policy": "AttachPolicy",
    "add_thing_to_thing_group": "AddThingToThingGroup",
}
#: the APIs a fault may target by name (the rest only through "any call").
TARGETS = ("GetObject", "HeadObject", "PutObject", "PutItem", "GetItem", "UpdateItem", "TransactWriteItems",
           "BatchWriteItem", "SendMessage", "SendMessageBatch", "RegisterCertificateWithoutCA", "CreateThing",
           "AttachThingPrincipal", "AttachPolicy")

#: how long a scheduled invocation may take to reach its next AWS call (a harness bug if exceeded).
STEP_TIMEOUT = 60.0


class Crash(BaseException):  # noqa: N818 -- not an error: the invocation's process is gone
    """The invocation dies here (Lambda killed, out of memory, timeout): nothing after runs."""


# -- faults ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    """``kind`` strikes the ``nth`` next call of ``api`` (None: of any API) after it is armed.

    ``detail`` chooses the entries a batch fault fails (bit i: entry i; never none).
    """

    kind: str
    api: str | None = None
    nth: int = 0
    detail: int = 1


@dataclass(slots=True)
class _Armed:
    fault: Fault
    apis: frozenset[str] | None
    at: int


class FaultPlan:
    """The faults armed so far, counted against every call made; ``fired`` logs what struck.

    ``injected(exc)``: whether ``exc`` is an error a fault raised, or was raised while
    handling one (its ``__cause__``/``__context__`` chain holds one).
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.total = 0
        self._armed: list[_Armed] = []
        self.fired: list[str] = []
        self.enabled = True
        self._raised: list[BaseException] = []

    @staticmethod
    def _apis(fault: Fault) -> frozenset[str] | None:
        if fault.kind in BATCH_KINDS:
            return frozenset({"SendMessageBatch"})
        if fault.kind == "conflict":
            return frozenset({fault.api}) if fault.api in CONFLICT_APIS else CONFLICT_APIS
        return None if fault.api is None else frozenset({fault.api})

    def _count(self, apis: frozenset[str] | None) -> int:
        return self.total if apis is None else sum(self.calls[api] for api in apis)

    def arm(self, fault: Fault) -> None:
        apis = self._apis(fault)
        self._armed.append(_Armed(fault, apis, self._count(apis) + fault.nth))

    @property
    def pending(self) -> int:
        return len(self._armed)

    def take(self, api: str) -> Fault | None:
        """Count one call of ``api``; the fault that strikes it, if any."""
        index_any = self.total
        struck = None
        if self.enabled:
            for armed in self._armed:
                if (armed.apis is None or api in armed.apis) and armed.at <= self._count(armed.apis):
                    struck = armed
                    break
        self.total += 1
        self.calls[api] += 1
        if struck is None:
            return None
        self._armed.remove(struck)
        self.fired.append(f"call #{index_any} {api}: {struck.fault.kind}")
        return struck.fault

    def raised(self, exc: BaseException) -> BaseException:
        """Remember ``exc`` as injected; returns it (``raise plan.raised(...)``)."""
        self._raised.append(exc)
        return exc

    def injected(self, exc: BaseException) -> bool:
        seen: set[int] = set()
        todo: list[BaseException | None] = [exc]
        while todo:
            current = todo.pop()
            if current is None or id(current) in seen:
                continue
            seen.add(id(current))
            if isinstance(current, Crash) or any(current is r for r in self._raised):
                return True
            todo += [current.__cause__, current.__context__]
        return False


def _error(code: str, status: int, op: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message or code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, op)


def client_error(client: Any, op: str, code: str, status: int, message: str, **modeled: Any) -> ClientError:
    """The error botocore raises for this answer: ``client.exceptions.from_code(code)`` (the
    modelled class, else ``ClientError``) over the parsed response: ``Error`` and
    ``ResponseMetadata``, and the error shape's members (``modeled``, e.g. ``Message``,
    ``CancellationReasons``) at the top level, where botocore's ``Endpoint._add_modeled_error_fields``
    puts them. ``test_model_exactly_once.test_injected_errors_match_botocore`` checks this
    against botocore's own parser."""
    meta = getattr(client, "meta", None)
    shape = meta.service_model.shape_for_error_code(code) if meta is not None else None
    for member in ("message", "Message"):  # the shape's own message member (DynamoDB spells it either way)
        if shape is not None and member in shape.members:
            modeled.setdefault(member, message)
    response: dict[str, Any] = {
        "Error": {"Message": message, "Code": code},
        "ResponseMetadata": {"RequestId": "model-harness", "HTTPStatusCode": status, "HTTPHeaders": {},
                             "RetryAttempts": 0},
        **modeled,
    }
    exceptions = getattr(client, "exceptions", None)
    cls = exceptions.from_code(code) if exceptions is not None else ClientError
    return cls(response, op)


TRANSACTION_CONFLICT = "Transaction is ongoing for the item"


def conflict_error(client: Any, api: str, kwargs: dict[str, Any], detail: int) -> ClientError:
    """DynamoDB's answer to a write that meets an ongoing transaction (nothing applied)."""
    if api != "TransactWriteItems":
        return client_error(client, api, "TransactionConflictException", 400, TRANSACTION_CONFLICT)
    count = len(kwargs["TransactItems"])
    reasons: list[dict[str, str]] = [{"Code": "None"} for _ in range(count)]
    reasons[detail % count] = {"Code": "TransactionConflict", "Message": TRANSACTION_CONFLICT}
    message = ("Transaction cancelled, please refer cancellation reasons for specific reasons "
               f"[{', '.join(r['Code'] for r in reasons)}]")
    return client_error(client, api, "TransactionCanceledException", 400, message, CancellationReasons=reasons)


class FaultyClient:
    """Wraps a client: every API call is a scheduling point and may be struck by a planned fault."""

    def __init__(self, client: Any, plan: FaultPlan, scheduler: Scheduler,
                 observe: Callable[[str, dict[str, Any]], None] | None = None,
                 lambda_time: LambdaTime | None = None):
        self._client = client
        self._plan = plan
        self._scheduler = scheduler
        #: the time each call takes and the invocation's timeout (None: calls take no time)
        self._lambda_time = lambda_time
        #: called with (API name, request) before every call (the test counts the paths it saw)
        self._observe = observe
        model = getattr(getattr(client, "meta", None), "service_model", None)
        #: operations AWS deduplicates by an idempotency token botocore fills in (same token on retry).
        self._tokened = frozenset(
            name for name in (model.operation_names if model is not None else ())
            if model.operation_model(name).idempotent_members)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        api = APIS.get(name)
        if api is None or not callable(target):
            return target

        def call(**kwargs: Any) -> Any:
            self._scheduler.pause()
            if self._lambda_time is not None:
                self._lambda_time.call(api)
            if self._observe is not None:
                self._observe(api, kwargs)
            fault = self._plan.take(api)
            if fault is None:
                return target(**kwargs)
            return self._strike(fault, api, target, kwargs)

        return call

    def _strike(self, fault: Fault, api: str, target: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        kind = fault.kind
        raised = self._plan.raised
        if kind == "crash_before":
            raise raised(Crash(f"killed before {api}"))
        if kind == "throttle":
            raise raised(client_error(self._client, api, "ThrottlingException", 400, "Rate exceeded"))
        if kind == "sdk_value_error":
            raise raised(HTTPClientError(error=ValueError("I/O operation on closed file.")))
        if kind == "sdk_serializer_error":
            raise raised(ValueError("Invalid header value b'\\n' (raised by the SDK before sending)"))
        if kind == "conflict":
            raise raised(conflict_error(self._client, api, kwargs, fault.detail))
        if kind in BATCH_KINDS:
            return self._batch_fault(fault, target, kwargs)
        body = kwargs.get("Body")
        start = body.tell() if hasattr(body, "seek") else None
        first = target(**kwargs)
        if kind == "crash_after":
            raise raised(Crash(f"killed after {api} was applied"))
        if kind == "ambiguous_error":
            raise raised(client_error(self._client, api, "InternalServerError", 500,
                                      "applied, but the answer was lost"))
        # ambiguous: botocore sends the identical request again, a seekable body rewound to where the
        # first attempt started reading (botocore's AWSRequest.reset_stream).
        if api in self._tokened:
            return first
        if start is not None:
            body.seek(start)
        return target(**kwargs)

    @staticmethod
    def _batch_fault(fault: Fault, target: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        entries = kwargs["Entries"]
        chosen = {i for i in range(len(entries)) if fault.detail >> i & 1} or {len(entries) - 1}
        chosen = {i % len(entries) for i in chosen}
        if fault.kind == "batch_omits":
            chosen = {min(chosen)}
        kept = [e for i, e in enumerate(entries) if i not in chosen]
        out: dict[str, Any] = {"Successful": [], "Failed": []}
        if kept:
            out = dict(target(**{**kwargs, "Entries": kept}))
            out.setdefault("Failed", [])
        if fault.kind == "partial_batch":
            out["Failed"] = list(out["Failed"]) + [
                {"Id": entries[i]["Id"], "SenderFault": False, "Code": "InternalError",
                 "Message": "injected partial failure"} for i in sorted(chosen)]
        return out


# -- SQS model -------------------------------------------------------------------------------------


@dataclass
class VirtualClock:
    """Epoch seconds that pass only when the model moves them: every AWS call an invocation makes
    takes some (``LambdaTime``), a sleep passes them, and receiving a message that is not visible yet
    (``DelaySeconds``, or a visibility timeout after a failed delivery) moves the clock to when it
    becomes visible, so a lease, a pause or a Lambda deadline ends as on AWS without the test
    waiting. The providers' wall clock (leases) and the throttles' clocks are this one."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def reach(self, instant: float) -> None:
        self.now = max(self.now, instant)

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@dataclass
class ModelContext:
    """The Lambda context of one model invocation: its time left runs on the virtual clock."""

    clock: VirtualClock
    #: the instant Lambda ends the invocation (its start plus the function's timeout)
    deadline: float
    #: the time each AWS call of this invocation takes
    call_seconds: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock.now) * 1000))


class LambdaTime:
    """Time inside invocations, on the virtual clock: each AWS call takes the invocation's
    ``call_seconds`` (calls outside an invocation take none), and Lambda ends an invocation at its timeout (``Crash`` at the first AWS call past it: the process is
    gone, its messages come back after their visibility timeout).

    Lambda quotas, "Function timeout: 900 seconds (15 minutes)"; an invocation that reaches its
    timeout is stopped by the runtime: https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html
    """

    def __init__(self, clock: VirtualClock):
        self.clock = clock
        self._local = threading.local()
        #: the AWS call before which Lambda ended each invocation it ended at its timeout
        self.ended_before: list[str] = []

    @contextmanager
    def invocation(self, timeout_seconds: float, call_seconds: float = 0.0) -> Iterator[ModelContext]:
        context = ModelContext(self.clock, self.clock.now + timeout_seconds, call_seconds)
        self._local.context = context
        try:
            yield context
        finally:
            self._local.context = None

    @property
    def timeouts(self) -> int:
        """Invocations Lambda ended at their timeout."""
        return len(self.ended_before)

    def call(self, api: str) -> None:
        """Before an AWS call: its time passes; past the invocation's timeout, Lambda has ended it."""
        context: ModelContext | None = getattr(self._local, "context", None)
        if context is None:
            return
        self.clock.advance(context.call_seconds)
        if self.clock.now >= context.deadline:
            self.ended_before.append(api)
            raise Crash(f"Lambda ended the invocation at its timeout, before {api}")


@dataclass(slots=True, eq=False)
class Message:
    """One copy of a message (compared by identity: a duplicate is another copy)."""

    message_id: str
    body: str
    receive_count: int = 0
    deleted: bool = False
    #: when it becomes visible (a ``DelaySeconds`` send, a visibility timeout): receiving it moves the clock there.
    due: float = 0.0
    #: when it was last received (its visibility timeout runs from there)
    received_at: float = 0.0

    def record(self, queue_arn: str) -> dict[str, Any]:
        """The Lambda SQS event record for this delivery."""
        return {"messageId": self.message_id, "receiptHandle": f"{self.message_id}#{self.receive_count}",
                "body": self.body, "attributes": {"ApproximateReceiveCount": str(self.receive_count),
                                                  "SentTimestamp": "0", "SenderId": "model",
                                                  "ApproximateFirstReceiveTimestamp": "0"},
                "messageAttributes": {}, "md5OfBody": hashlib.md5(self.body.encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1"}


@dataclass
class ModelQueue:
    """A standard queue: visible messages, messages held by invocations, a DLQ after ``max_receive``."""

    name: str
    max_receive: int | None = None
    dlq: ModelQueue | None = None
    visible: list[Message] = field(default_factory=list)
    held: list[Message] = field(default_factory=list)
    clock: VirtualClock = field(default_factory=VirtualClock)
    #: seconds a received message stays invisible: one whose invocation failed comes back after it
    visibility_timeout: float = 0.0

    @property
    def url(self) -> str:
        return f"https://sqs.us-east-1.amazonaws.com/123456789012/{self.name}"

    @property
    def arn(self) -> str:
        return f"arn:aws:sqs:us-east-1:123456789012:{self.name}"

    def put(self, message: Message) -> None:
        self.visible.append(message)

    def receive(self, start: int, count: int) -> list[Message]:
        """Up to ``count`` visible messages from ``start`` on (moving over-received ones to the DLQ)."""
        got: list[Message] = []
        while self.visible and len(got) < count:
            message = self.visible.pop(start % len(self.visible))
            if self.max_receive is not None and message.receive_count >= self.max_receive:
                assert self.dlq is not None
                self.dlq.put(message)
                continue
            message.receive_count += 1
            self.clock.reach(message.due)
            message.received_at = self.clock.now
            got.append(message)
        self.held.extend(got)
        return got

    def release(self, messages: Iterable[Message]) -> None:
        """The invocations holding ``messages`` are over: what was not deleted is visible again."""
        for message in messages:
            if message in self.held:
                self.held.remove(message)
                if not message.deleted and message not in self.held:
                    # invisible until the timeout that started at its receive runs out
                    message.due = max(message.due, message.received_at + self.visibility_timeout)
                    self.visible.append(message)

    def duplicate(self, index: int) -> None:
        """At-least-once delivery: a second copy of a visible message (same message id)."""
        if self.visible:
            original = self.visible[index % len(self.visible)]
            self.visible.append(Message(original.message_id, original.body, original.receive_count))


class ModelSqs:
    """The SQS API the functions use, over ``ModelQueue``s; refuses what SQS refuses.

    SendMessageBatch limits: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
    (at most 10 entries, Ids distinct, the whole request at most 256 KiB).
    """

    def __init__(self, *queues: ModelQueue, clock: VirtualClock | None = None):
        self.queues = {q.url: q for q in queues}
        self._ids = itertools.count(1)
        self.clock = clock or VirtualClock()

    def _queue(self, url: str, op: str) -> ModelQueue:
        queue = self.queues.get(url)
        if queue is None:
            raise _error("AWS.SimpleQueueService.NonExistentQueue", 400, op, f"no queue {url}")
        return queue

    def _new(self, body: str) -> tuple[Message, dict[str, str]]:
        message = Message(f"msg-{next(self._ids)}", body)
        return message, {"MessageId": message.message_id, "MD5OfMessageBody": hashlib.md5(body.encode()).hexdigest()}  # noqa: S324

    def send_message(self, *, QueueUrl: str, MessageBody: str, DelaySeconds: int = 0,  # noqa: N803 -- the AWS names
                     **_: Any) -> dict[str, Any]:
        queue = self._queue(QueueUrl, "SendMessage")
        if len(MessageBody.encode()) > MAX_MESSAGE_BYTES:
            raise _error("InvalidParameterValue", 400, "SendMessage", "message too long")
        message, answer = self._new(MessageBody)
        message.due = self.clock.now + DelaySeconds
        queue.put(message)
        return answer

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]], **_: Any) -> dict[str, Any]:  # noqa: N803
        queue = self._queue(QueueUrl, "SendMessageBatch")
        if not Entries:
            raise _error("AWS.SimpleQueueService.EmptyBatchRequest", 400, "SendMessageBatch")
        if len(Entries) > 10:
            raise _error("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400, "SendMessageBatch")
        if len({e["Id"] for e in Entries}) != len(Entries):
            raise _error("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400, "SendMessageBatch")
        if sum(len(e["MessageBody"].encode()) for e in Entries) > MAX_MESSAGE_BYTES:
            raise _error("AWS.SimpleQueueService.BatchRequestTooLong", 400, "SendMessageBatch")
        successful = []
        for entry in Entries:
            message, answer = self._new(entry["MessageBody"])
            queue.put(message)
            successful.append({"Id": entry["Id"], **answer})
        return {"Successful": successful, "Failed": []}

    def get_queue_attributes(self, *, QueueUrl: str, AttributeNames: list[str] | None = None,  # noqa: N803
                             **_: Any) -> dict[str, Any]:
        queue = self._queue(QueueUrl, "GetQueueAttributes")
        now = self.clock.now
        waiting = [m for m in queue.visible if m.due > now]
        values = {"ApproximateNumberOfMessages": len(queue.visible) - len(waiting),
                  # held by an invocation, or back from one that failed and not visible yet
                  "ApproximateNumberOfMessagesNotVisible": len(queue.held) + sum(1 for m in waiting if m.receive_count),
                  "ApproximateNumberOfMessagesDelayed": sum(1 for m in waiting if not m.receive_count)}
        wanted = set(AttributeNames or ["All"])
        return {"Attributes": {k: str(v) for k, v in values.items() if "All" in wanted or k in wanted}}


# -- scheduling ------------------------------------------------------------------------------------


@dataclass
class _Task:
    fn: Callable[[], Any]
    go: threading.Event = field(default_factory=threading.Event)
    parked: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class Scheduler:
    """Runs invocations in threads, exactly one at a time, switching only at AWS calls.

    ``run(fns, choices)``: before each step the next choice picks which live
    invocation makes its next step (choice modulo the number alive; choices used
    up: the first alive). A step ends at the invocation's next AWS call (``pause``,
    called by ``FaultyClient``) or when it returns. The order is a pure function
    of ``choices``: deterministic, and shrinkable by hypothesis. Outside ``run``
    (one invocation on the caller's thread) ``pause`` does nothing.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def pause(self) -> None:
        task: _Task | None = getattr(self._local, "task", None)
        if task is None:
            return
        task.parked.set()
        if not task.go.wait(STEP_TIMEOUT):
            raise RuntimeError("scheduler never resumed this invocation")
        task.go.clear()

    def run(self, fns: list[Callable[[], Any]], choices: Iterable[int]) -> list[_Task]:
        tasks = [_Task(fn) for fn in fns]

        def body(task: _Task) -> None:
            self._local.task = task
            task.go.wait(STEP_TIMEOUT)
            task.go.clear()
            try:
                task.result = task.fn()
            except BaseException as exc:  # noqa: BLE001 -- a crash or error ends this invocation only
                task.error = exc
            finally:
                task.done = True
                task.parked.set()

        threads = [threading.Thread(target=body, args=(t,), daemon=True) for t in tasks]
        for thread in threads:
            thread.start()
        picks = iter(choices)
        while alive := [t for t in tasks if not t.done]:
            task = alive[next(picks, 0) % len(alive)]
            task.parked.clear()
            task.go.set()
            if not task.parked.wait(STEP_TIMEOUT):
                raise RuntimeError("an invocation did not reach its next AWS call in time")
        for thread in threads:
            thread.join(STEP_TIMEOUT)
        return tasks
