"""Reusable moto helpers: in-process AWS, the audit table, queues, buckets, S3 events and a Lambda context.

Tests import it as ``aws_fixtures`` (``tests/`` is on ``sys.path`` because
``tests/conftest.py`` is a rootless conftest, pytest's default import mode). Every helper takes an already-created boto3 client so the caller decides where
moto runs (in-process :func:`in_process_aws` or the emulator's moto server).

The unit-test fixtures that need the same resources in every test (the audit
table, a bucket, queues, an IoT policy...) use :func:`prepared_aws`: the
resources are created once per process, and each test starts from a copy of
moto's state right after that creation, through boto3 clients created once
(:func:`client`).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import gc
import re
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from moto import mock_aws
from moto.core.base_backend import BackendDict
from moto.core.models import MockAWS

from thingpress.audit.keys import INDEX_BY_STATE, INDEX_BY_THING

from events import REGION, s3_event
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing", "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION,
}


def in_process_aws() -> MockAWS:
    """moto in-process for one test, answering as the emulator does.

    The emulator's one patch set (:func:`thingpress_cli.local.emulator.patches.apply`)
    applies, so in-process AWS follows the same AWS rules as the local cloud, at the
    same cost (its speed patches: no whole-table copies or per-request scans; the
    model-based test runs about 15% faster with them). Each
    test starts from empty backends (``mock_aws`` resets them on start), but the
    boto3 session is kept: moto would otherwise drop it on every start, and each
    test would re-read every service model it creates a client for (~0.2 s each).
    """
    from thingpress_cli.local.emulator import patches  # here: the benchmarks load this module without the patches

    patches.apply()
    return mock_aws(config={"core": {"reset_boto3_session": False}})


# -- clients and state kept across tests ------------------------------------------


@dataclass
class _KeptClient:
    client: Any
    attributes: dict[str, Any]  #: the client's instance attributes as created
    events: Any  #: a copy of its event emitter as created (botocore's HierarchicalEmitter)
    #: the emitter's lookup cache since it was last as created: botocore replaces that dict on every
    #: register and unregister, so the same dict means the same hooks (copying them takes ~10 ms)
    lookup_cache: dict[str, Any] = field(default_factory=dict)


_CLIENTS: dict[str, _KeptClient] = {}


#: In-process moto checks no signature for these, and signing is about a fifth of a call's time (the
#: model-based test's clients do the same). S3 stays signed: moto refuses an unsigned request to a
#: private bucket, as AWS does.
UNSIGNED_SERVICES = frozenset({"dynamodb", "sqs", "iot"})
_UNSIGNED = Config(signature_version=UNSIGNED)


def client(service: str) -> Any:
    """This process's boto3 client for ``service`` (:data:`REGION`, fake credentials), created once.

    A botocore client holds no moto state (moto keeps it in its backends), and
    creating one costs ~10-25 ms even with the kept boto3 session, so the
    fixtures share one per service. :func:`reset_clients` (run by
    :func:`prepared_aws` for every test) puts back what a test may change on it:
    its event hooks (``CallRecorder`` registers one) and its instance attributes.
    """
    kept = _CLIENTS.get(service)
    if kept is None:
        made = boto3.client(service, region_name=REGION, config=_UNSIGNED if service in UNSIGNED_SERVICES else None,
                            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"])
        emitter = made.meta.events._emitter
        kept = _CLIENTS[service] = _KeptClient(made, dict(vars(made)), copy.copy(emitter), emitter._lookup_cache)
    return kept.client


def reset_clients() -> None:
    """Every client of :func:`client` as it was created: no hooks or attributes a test added."""
    for kept in _CLIENTS.values():
        attributes = vars(kept.client)
        attributes.clear()
        attributes.update(kept.attributes)
        emitter = kept.client.meta.events._emitter
        if emitter._lookup_cache is not kept.lookup_cache:  # a hook was registered or unregistered
            emitter._handlers = copy.copy(kept.events._handlers)
            emitter._unique_id_handlers = copy.copy(kept.events._unique_id_handlers)
            emitter._lookup_cache = kept.lookup_cache = {}


#: The standard attributes of a ``BackendDict``; any other (``s3_backends.bucket_accounts``) is service state.
_BACKEND_DICT_ATTRIBUTES = frozenset(vars(BackendDict(object, "none")))


@dataclass
class MotoState:
    """moto's state: every region backend in use, and the service state kept on a ``BackendDict`` itself."""

    backends: list[tuple[BackendDict, str, str, Any]]  #: (backend dict, account, region, backend)
    extras: list[tuple[BackendDict, dict[str, Any]]]  #: (backend dict, its non-standard attributes)

    @classmethod
    def live(cls) -> MotoState:
        """The state in moto now (moto's own objects, not a copy)."""
        return cls([(bd, account, region, backend) for bd in BackendDict._instances
                    for account, by_region in bd.items() for region, backend in by_region.items()],
                   [(bd, {k: v for k, v in vars(bd).items() if k not in _BACKEND_DICT_ATTRIBUTES})
                    for bd in BackendDict._instances])

    def copy(self) -> MotoState:
        """A deep copy of the backends and extras, with one memo (references between backends stay
        references); the ``BackendDict`` objects themselves are moto's globals and stay shared."""
        memo: dict[int, Any] = {id(bd): bd for bd in self.backend_dicts()}
        with _locks_copied():
            return MotoState([(bd, account, region, copy.deepcopy(backend, memo))
                              for bd, account, region, backend in self.backends],
                             [(bd, copy.deepcopy(attributes, memo)) for bd, attributes in self.extras])

    def install(self) -> None:
        """Make this moto's state (moto's own reset first: any other backend is empty)."""
        BackendDict.reset()
        for bd, account, region, backend in self.backends:
            dict.__setitem__(bd[account], region, backend)  # ``bd[account]`` registers bd for moto's reset
        for bd, attributes in self.extras:
            vars(bd).update(attributes)

    def backend_dicts(self) -> list[BackendDict]:
        return [bd for bd, *_ in self.backends] + [bd for bd, _ in self.extras]

    def shared_with(self, other: MotoState) -> list[Any]:
        """The mutable objects both states reach (none between a state and its copy): for the isolation tests."""
        mine, theirs = self._reachable(), other._reachable()
        return [mine[i] for i in mine.keys() & theirs.keys() if not isinstance(mine[i], _IMMUTABLE)]

    def _reachable(self) -> dict[int, Any]:
        stop = {id(bd) for bd in self.backend_dicts()}
        seen: dict[int, Any] = {}
        todo: list[Any] = [backend for *_, backend in self.backends] + [attrs for _, attrs in self.extras]
        while todo:
            obj = todo.pop()
            if isinstance(obj, types.BuiltinMethodType) and not isinstance(obj.__self__, (types.ModuleType,
                                                                                          type(None))):
                obj = obj.__self__  # a lock's bound method (a condition's ``acquire``) is that lock
            if id(obj) in seen or id(obj) in stop or isinstance(obj, _NOT_STATE):
                continue
            seen[id(obj)] = obj
            todo.extend(gc.get_referents(obj))
        return seen


#: What the state refers to but is not state (code, classes, modules), and values no one can change.
_NOT_STATE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodWrapperType,
              types.WrapperDescriptorType, types.MethodDescriptorType, types.GetSetDescriptorType,
              types.MemberDescriptorType, types.CodeType, property, staticmethod, classmethod)
_IMMUTABLE = (str, bytes, int, float, complex, bool, type(None), tuple, frozenset, re.Pattern,
              datetime.date, datetime.time, datetime.timedelta, datetime.tzinfo)


_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


@contextlib.contextmanager
def _locks_copied() -> Iterator[None]:
    """``copy.deepcopy`` gives a new lock for a lock (and a new condition over a new lock), instead of refusing."""
    dispatch = copy._deepcopy_dispatch  # type: ignore[attr-defined]
    added = {lock_type: (lambda lock, _memo: type(lock)()) for lock_type in _LOCK_TYPES}
    added[threading.Condition] = lambda cond, memo: threading.Condition(copy.deepcopy(cond._lock, memo))
    added = {k: v for k, v in added.items() if k not in dispatch}
    dispatch.update(added)
    try:
        yield
    finally:
        for key in added:
            dispatch.pop(key, None)


T = TypeVar("T")
_PREPARED: dict[str, tuple[Any, MotoState]] = {}


@contextlib.contextmanager
def prepared_aws(name: str, build: Callable[[], T]) -> Iterator[T]:
    """:func:`in_process_aws` for one test, starting from the state ``build()`` leaves, built once per process.

    The first time, ``build()`` creates its resources through the API (with the
    clients of :func:`client`) in a fresh moto, and a deep copy of moto's state
    then is kept (:class:`MotoState`) with what ``build`` returned (names, URLs;
    each test gets a copy). Every test, the first one included, starts the mock
    as before (moto resets every backend), installs its own deep copy of the kept
    state and gets the kept clients as created (:func:`reset_clients`): whatever a
    test writes, creates, changes or deletes is gone for the next, as when each
    test created everything anew, at a fraction of the cost (a copy takes 1-3 ms;
    the API calls took 35-200 ms and the clients 10-25 ms each). The mock itself
    stays per test (~3 ms): moto's mock is process-wide, and tests that start
    :func:`in_process_aws` or ``mock_aws`` themselves expect empty backends.
    """
    with in_process_aws():
        reset_clients()  # before ``build`` too: it may use a client an earlier test added a hook to
        if name not in _PREPARED:
            made = build()
            _PREPARED[name] = (made, MotoState.live().copy())
        made, state = _PREPARED[name]
        state.copy().install()
        yield copy.deepcopy(made)


def prepared_state(name: str) -> MotoState:
    """The state kept for :func:`prepared_aws` ``name`` (each test installs a copy of it)."""
    return _PREPARED[name][1]


def _left_behind(**_: Any) -> None:
    raise AssertionError("a client hook registered by an earlier test is still there")


def leave_failing_hooks(**clients: Any) -> None:
    """Register on each kept client (keyword: its service) a ``before-call`` hook that fails every call.

    The fixture-isolation tests leave these behind in one test; the next test's calls through
    the same kept clients prove :func:`reset_clients` took them away.
    """
    for service, kept in clients.items():
        kept.meta.events.register(f"before-call.{service}", _left_behind)


def create_audit_table(client: Any, name: str = "thingpress-audit") -> str:
    """The audit table with the key schema and indexes documented in ``thingpress.audit``."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "thing_name", "AttributeType": "S"},
            {"AttributeName": "state", "AttributeType": "S"},
            {"AttributeName": "updated_at", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {"IndexName": INDEX_BY_THING,
             "KeySchema": [{"AttributeName": "thing_name", "KeyType": "HASH"},
                           {"AttributeName": "updated_at", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "ALL"}},
            {"IndexName": INDEX_BY_STATE,
             "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"},
                           {"AttributeName": "updated_at", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "ALL"}},
        ],
    )
    return name


def create_queue(client: Any, name: str, **attributes: str) -> str:
    """A standard queue; returns its URL."""
    return client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def create_bucket(client: Any, name: str, *, versioned: bool = True) -> str:
    client.create_bucket(Bucket=name)
    if versioned:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def drain_queue(client: Any, url: str) -> list[dict[str, Any]]:
    """Receive and delete every message (moto delivers immediately)."""
    out: list[dict[str, Any]] = []
    while True:
        got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return out
        out.extend(messages)
        client.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])


def put_and_event(s3: Any, bucket: str, key: str, body: bytes) -> dict[str, Any]:
    """Upload ``body`` and return the S3 event notification for that exact version."""
    out = s3.put_object(Bucket=bucket, Key=key, Body=body)
    return s3_event(bucket, key, version_id=out.get("VersionId"), etag=out["ETag"].strip('"'), size=len(body))


@dataclass
class FakeContext:
    """A Lambda context. ``remaining_ms`` is a list consumed per call (last value repeats)."""

    remaining_ms: list[int] = field(default_factory=lambda: [900_000])
    function_name: str = "thingpress-provider"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:thingpress-provider"
    aws_request_id: str = "req-1"
    calls: int = 0

    def get_remaining_time_in_millis(self) -> int:
        self.calls += 1
        if len(self.remaining_ms) > 1:
            return self.remaining_ms.pop(0)
        return self.remaining_ms[0]
