"""Model-based test: every certificate ends in exactly one state, whatever fails where.

A hypothesis ``RuleBasedStateMachine`` drives the real ``Provider`` (the generated and the
Infineon vendor) and ``Importer`` logic against in-process moto (S3, DynamoDB, IoT) and a
model SQS (``model_harness.ModelSqs``), with faults planned at any AWS call. Its rules:

* ``upload``: a manifest (1-15 entries drawn from a pool of twelve devices, so duplicates
  within and across manifests happen, plus bad lines; or every device once) is put in S3
  and its S3 event queued on its vendor's manifest queue. A generated-vendor text file,
  or an Infineon reel (a 7z of 7z archives: the provider extracts it once into a staged
  object that every chunk reads from its cursor; a device named twice is named once, a
  bad line is a ``.pem`` without a certificate);
* ``old_checkpoint``: a manifest part-way through is turned into what an earlier release
  left (a checkpoint without a ``cursor``, no claims): the provider must re-read it from
  the top, skip to the checkpoint and claim the entries before it again;
* ``arm_fault``: a fault (``model_harness.KINDS``, ``conflict`` included) strikes the n-th
  next call of one API, or of any API;
* ``deliver``: one invocation takes messages from a queue (a provider one, the importer a
  batch of 1-10) and runs; a message is deleted only when its invocation succeeded,
  otherwise it becomes visible again after its visibility timeout (receive count + 1);
* ``duplicate``: SQS delivers a second copy of a message (at-least-once);
* ``two_invocations``: two invocations run interleaved call by call
  (``model_harness.Scheduler``), on one message (SQS delivered it twice: at least
  once) or on two.

Time is virtual (``model_harness.VirtualClock``): each AWS call of an invocation takes
the time ``setup`` drew (0, 0.5 or 3 s), sleeps pass it, and receiving a message that is
not visible yet moves the clock to when it is -- a ``DelaySeconds`` continuation, or a
message whose invocation failed, back after its queue's visibility timeout (six times the
function's). Each invocation gets a Lambda context whose time left runs on that clock (the
providers' timeout drawn as deployed on AWS, 900 s, or locally, 60 s), so the providers
reach their safety margin and hand over, and Lambda ends an invocation that runs past its
timeout (``model_harness.LambdaTime``). Leases, pauses and the watchdog use the same clock.

``initialize`` draws the provider's pacing (checkpoint every 1-12 entries, a
continuation after 2-16 entries, an import window of 1, 4 or 12 certificates or
none: ``thingpress.backpressure``, a full window pauses the manifest), IoT state from
before (certificates and things that exist already) and **the first manifest, which it
uploads**: every scenario has a manifest to check (one without would check nothing), and
``teardown`` asserts it. At the end of every scenario (``teardown``) the system is brought
to quiescence -- every queued message delivered until none is left, failed ones again,
with the remaining planned faults still striking -- and then the real
``thingpress.watchdog.Watchdog`` sweeps (its clock past ``STALL_AFTER_SECONDS``, so every
unfinished manifest counts as idle; a sweep that ends must have checked exactly the
unfinished manifests) and the queues drain again, up to four times while sweeps resume
something. Then:

1. no message is left anywhere, none went to a DLQ;
2. every manifest is COMPLETE, its summary adds up
   (``imported + already_present + rejected + failed + duplicates == entries``,
   nothing outstanding, checkpoint at the last entry);
3. every entry is in exactly one terminal state: a duplicate counted once, a bad
   line one refusal row, a certificate one outcome row (IMPORTED, or
   ALREADY_PRESENT where the certificate and thing existed before), and the
   counters equal the rows;
4. IoT holds exactly the expected certificates (ACTIVE) and things, each thing with
   its certificate attached and the policy on the certificate.

Failures: an invocation, a batch write or a sweep may fail only with an error a planned
fault raised (``FaultPlan.injected``: that very error, or one raised while handling it),
``Crash``, or one of the product's retry errors (``RETRY_ERRORS``); anything else -- a
TypeError, a KeyError, a moto ValidationException -- fails the scenario.

Scenarios: 500 in ``make test`` (ten shards of 50, see ``SHARDS``), 5 in ``make test-unit``, 5,000 with ``THINGPRESS_FUZZ_PROFILE=long``
(``make fuzz-long``). A shard of the default budget must go through the Infineon staged
reads and the old-checkpoint re-claims (``PATHS``); the ``test_an_*`` path tests go through
them every run. ``THINGPRESS_MODEL_FAULTS=kind,kind`` narrows the fault kinds
(to look at one defect at a time); ``THINGPRESS_MODEL_NO_WATCHDOG=1`` checks
without the watchdog's pass.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import logging
import os
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import budget
import factories
import pytest
from aws_fixtures import FAKE_CREDENTIALS, REGION, create_audit_table, create_bucket, in_process_aws, put_and_event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore import UNSIGNED
from botocore.config import Config
from hypothesis import HealthCheck, event, settings
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test
from model_harness import (KINDS, TARGETS, Crash, Fault, FaultPlan, FaultyClient, ModelQueue, ModelSqs, Scheduler,
                           LambdaTime, VirtualClock, client_error, conflict_error)
from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID
from stacks import defaults

from thingpress.audit.keys import SUMMARY_SK, claims_pk, from_item, manifest_id, manifest_pk, to_item
from thingpress.audit.states import (
    ALREADY_PRESENT,
    COMPLETE,
    FAILED,
    IMPORTED,
    REJECTED,
    STALLED,
    STATUSES,
    UNFINISHED_STATES,
)
from thingpress.audit.table import AuditTable
from thingpress.importer.results import RetryLater
from thingpress.importer.rules import CertificateArns
from thingpress.importer.runtime import Importer
from thingpress.provider.failures import ProviderError
from thingpress.provider.runtime import Provider, Tuning
from thingpress.provider.telemetry import metrics
from thingpress.settings import DEFAULT_IOT_TPS, STAGING_PREFIX, FunctionSettings
from thingpress.throttle import Backoff, DeadlineExceeded, Throttle
from thingpress.watchdog import SweepResult, Watchdog

#: ``make test-unit`` (quick): 5, each ~0.5 s of CPU; the known scenarios and the path tests below run in
#: every profile, and ``make test`` runs the 500.
SCENARIOS = int(os.environ.get("THINGPRESS_MODEL_SCENARIOS", budget.examples(500, quick=5)))
#: rules per scenario (before the quiescence of ``teardown``).
STEPS = 12
#: THINGPRESS_MODEL_NO_WATCHDOG=1: check right after quiescence, without the watchdog's pass: shows
#: what only the watchdog recovers (a manifest no message resumes any more).
NO_WATCHDOG = os.environ.get("THINGPRESS_MODEL_NO_WATCHDOG") == "1"
FAULT_KINDS = tuple(k for k in os.environ.get("THINGPRESS_MODEL_FAULTS", ",".join(KINDS)).split(",") if k)

TABLE = "thingpress-audit"
BUCKET = "manifests"
POLICY = "thingpress-device"
POOL = 12
#: manifests per scenario (each costs its certificates' imports: the pool bounds them).
MAX_UPLOADS = 2
#: a line of valid base64 that is not a certificate: refused by the provider on its own.
BAD_LINE = base64.b64encode(b"not a certificate") + b"\n"
#: far above what the planned faults can cause: a DLQ message is a finding, not noise.
MAX_RECEIVE = 25
#: deliveries allowed to reach quiescence before the scenario counts as a livelock.
QUIESCENCE_LIMIT = 400
#: watchdog sweeps at the end of a scenario (``_finish``: each one must find something moved since the last).
MAX_SWEEPS = 40
#: deliveries between the watchdog's sweeps while the queues drain: a manifest paused for backpressure
#: by counts an importer lost (``thingpress.audit``, "Counting, exactly once") goes round its pauses
#: until a sweep counts them (``thingpress.watchdog``).
SWEEP_EVERY = 100
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:thingpress-importer"
FOREIGN = {"owner": "installed-before-thingpress"}
#: the watchdog's stall threshold (twice a 900 s provider timeout, as deployed); its clock is set
#: further ahead than that, so every unfinished manifest counts as idle.
STALL_AFTER_SECONDS = 1800.0
#: the providers' timeout as deployed on AWS and on the local target (``setup`` draws one)
PROVIDER_TIMEOUTS = (defaults.PROVIDER_TIMEOUT_SECONDS, defaults.LOCAL_PROVIDER_TIMEOUT_SECONDS)
#: the time one AWS call of a provider invocation takes, on the virtual clock (``setup`` draws one):
#: at 3 s a 60 s invocation reaches its safety margin after about 17 calls, and Lambda ends one that
#: runs past its timeout.
CALL_SECONDS = (0.0, 0.5, 3.0)
#: a provider that stops with less than this share of its timeout left stopped for its deadline
#: (its safety margin is a sixth of the time at start, at most 30 s).
SAFETY_MARGIN_SHARE = 1 / 5
IMPORTER_TIMEOUT = defaults.IMPORTER_TIMEOUT_SECONDS
#: an importer call's time: a batch of ten stays well inside its timeout, as the stack sizes it
#: (``defaults.import_batch_size``).
IMPORTER_CALL_SECONDS = 0.05

#: the failures worth a retry the product raises on purpose (``thingpress.errors``): a Lambda fails
#: with them and SQS delivers the message again.
RETRY_ERRORS = (ProviderError, RetryLater, DeadlineExceeded)

_keys = itertools.count()
VENDORS = ("generated", "infineon")
#: path -> the scenarios that went through it (``ExactlyOnce.paths``), over the whole session.
SEEN_PATHS: Counter[str] = Counter()
#: the provider paths every shard must reach (issue: the Infineon staging path, the old-checkpoint path).
PATHS = ("infineon staged object read from a cursor", "old checkpoint: entry before it claimed again")
#: a manifest's entries: 1-15 drawn from the pool (duplicates, bad lines), or every device once
#: (more than one SendMessageBatch's worth).
ENTRIES = (st.lists(st.none() | st.integers(0, POOL - 1), min_size=1, max_size=15)
           | st.permutations(range(POOL)).map(list))


# -- the world -------------------------------------------------------------------------------------


@dataclass
class World:
    """moto, started once for the whole test; ``reset`` empties it between scenarios."""

    s3: Any
    dynamodb: Any
    iot: Any

    def reset(self) -> None:
        backend = get_backend("dynamodb")[DEFAULT_ACCOUNT_ID][REGION]
        backend.tables[TABLE].items.clear()
        bucket = get_backend("s3")[DEFAULT_ACCOUNT_ID]["global"].buckets[BUCKET]
        bucket.keys.clear()
        get_backend("iot")[DEFAULT_ACCOUNT_ID][REGION].reset()
        self.iot.create_policy(policyName=POLICY, policyDocument='{"Version":"2012-10-17","Statement":[]}')


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    saved = {name: os.environ.get(name) for name in FAKE_CREDENTIALS}
    os.environ.update(FAKE_CREDENTIALS)
    quiet = [logging.getLogger(name) for name in ("thingpress-provider", "thingpress-importer")]
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.CRITICAL)
    # Unsigned (DynamoDB, IoT): moto does not check signatures there, and signing is a fifth of a
    # call's time. S3 refuses an unsigned request to a private bucket, as AWS does.
    config = Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1})
    try:
        with in_process_aws():
            s3 = boto3.client("s3", region_name=REGION, config=Config(retries={"total_max_attempts": 1}))
            dynamodb = boto3.client("dynamodb", region_name=REGION, config=config)
            iot = boto3.client("iot", region_name=REGION, config=config)
            create_audit_table(dynamodb, TABLE)
            create_bucket(s3, BUCKET)
            yield World(s3, dynamodb, iot)
    finally:
        for log, level in zip(quiet, levels, strict=True):
            log.setLevel(level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- manifests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """One manifest as uploaded: each entry (in position order) a device index or None (a bad line)."""

    manifest_id: str
    entries: tuple[int | None, ...]
    vendor: str = "generated"

    def first_positions(self) -> dict[int, int]:
        first: dict[int, int] = {}
        for position, device in enumerate(self.entries, start=1):
            if device is not None:
                first.setdefault(device, position)
        return first


def _device(i: int) -> Any:
    return factories.devices(POOL)[i]


def _fingerprint(i: int) -> str:
    return factories.fingerprint(_device(i))


def _manifest_bytes(entries: tuple[int | None, ...]) -> bytes:
    return b"".join(BAD_LINE if i is None else base64.b64encode(_device(i).pem) + b"\n" for i in entries)




def _reel_files(entries: list[int | None]) -> dict[str, bytes]:
    """The drawn entries as the files of an E0E0 bundle: a device's PEM named by its thing name (the
    chip id is the thing name), a bad line a ``.pem`` that holds no certificate. A 7z holds a name
    once, so a device named again is dropped (duplicates come from the other manifest)."""
    files: dict[str, bytes] = {}
    for k, i in enumerate(entries):
        if i is None:
            files[f"bad-{k:02d}_E0E0.pem"] = b"not a certificate\n"
        else:
            files.setdefault(f"{_device(i).name}_E0E0.pem", _device(i).pem)
    return files


def _reel(files: dict[str, bytes]) -> tuple[bytes, tuple[int | None, ...]]:
    """An Infineon reel (``factories.infineon_reel``'s layout) and its entries in position order (the
    provider takes the bundle's files in sorted name order)."""
    names = {f"{_device(i).name}_E0E0.pem": i for i in range(POOL)}
    inner = factories.seven_zip(files)
    reel = factories.seven_zip({f"{factories.REEL}_{factories.GUID}_E0E0_Certs.7z": inner,
                                f"{factories.REEL}_{factories.GUID}_keys.7z": factories.keys_archive(),
                                "README.txt": b"model reel\n"})
    return reel, tuple(names.get(name) for name in sorted(files))


# -- the state machine -----------------------------------------------------------------------------


class ExactlyOnce(RuleBasedStateMachine):
    def __init__(self, world: World):
        super().__init__()
        self.world = world
        world.reset()
        self.plan = FaultPlan()
        self.scheduler = Scheduler()
        self.clock = VirtualClock()
        #: each AWS call's time and each invocation's timeout (``setup`` draws the call time)
        self.lambda_time = LambdaTime(self.clock)
        self.manifest_dlq = ModelQueue("thingpress-manifest-dlq", clock=self.clock)
        self.import_dlq = ModelQueue("thingpress-import-dlq", clock=self.clock)
        #: one manifest queue per vendor, as deployed (both dead-letter to one model DLQ)
        self.manifest_queues = {vendor: ModelQueue(f"thingpress-manifest-{vendor}", MAX_RECEIVE, self.manifest_dlq,
                                                   clock=self.clock,
                                                   visibility_timeout=defaults.visibility_timeout(PROVIDER_TIMEOUTS[0]))
                                for vendor in VENDORS}
        self.manifest_queue = self.manifest_queues["generated"]
        self.import_queue = ModelQueue("thingpress-import", MAX_RECEIVE, self.import_dlq, clock=self.clock,
                                       visibility_timeout=defaults.visibility_timeout(IMPORTER_TIMEOUT))
        self.sqs = ModelSqs(*self.manifest_queues.values(), self.import_queue, self.manifest_dlq, self.import_dlq,
                            clock=self.clock)
        self.queues: tuple[ModelQueue, ...] = (*self.manifest_queues.values(), self.import_queue)
        self.uploads: list[Upload] = []
        self.preseeded: set[int] = set()
        self.provider_timeout = PROVIDER_TIMEOUTS[0]
        self.call_seconds = 0.0
        self.tuning = Tuning()
        self.use_watchdog = not NO_WATCHDOG
        #: the sweeps that ran to the end (``_sweep``)
        self.sweeps: list[SweepResult] = []
        #: the instant of the last sweep, on the watchdog's clock (``_watchdog``)
        self.swept_at = 0.0
        #: the paths of the product a scenario went through (``_observe``), for ``event`` and the path tests
        self.paths: Counter[str] = Counter()
        #: manifests whose checkpoint the ``old_checkpoint`` rule turned into an earlier release's
        #: (no cursor, no claims): manifest id -> that checkpoint
        self.old_checkpoints: dict[str, int] = {}
        self.clients = {name: FaultyClient(client, self.plan, self.scheduler, observe=self._observe,
                                           lambda_time=self.lambda_time)
                        for name, client in (("s3", world.s3), ("dynamodb", world.dynamodb), ("iot", world.iot),
                                             ("sqs", self.sqs))}
        self.provider_settings = FunctionSettings(
            audit_table=TABLE, import_queue_url=self.import_queue.url, manifest_queue_url=self.manifest_queue.url,
            vendor="generated")
        self.importer_settings = FunctionSettings(audit_table=TABLE, vendor="generated", policy_names=(POLICY,),
                                                  max_receive_count=MAX_RECEIVE)

    # -- set-up ------------------------------------------------------------------------------------

    @initialize(checkpoint_every=st.sampled_from((1, 3, 12)), max_entries=st.sampled_from((2, 5, 16)), send_attempts=st.integers(1, 3),
                preseed=st.frozensets(st.integers(0, POOL - 1), max_size=2), window=st.sampled_from((None, 1, 4, 12)),
                first=ENTRIES, vendor=st.sampled_from(VENDORS), provider_timeout=st.sampled_from(PROVIDER_TIMEOUTS),
                call_seconds=st.sampled_from(CALL_SECONDS))
    def setup(self, checkpoint_every: int, max_entries: int, send_attempts: int, preseed: frozenset[int],
              window: int | None = None, first: list[int | None] | None = None, vendor: str = "generated",
              provider_timeout: int = PROVIDER_TIMEOUTS[0], call_seconds: float = 0.0) -> None:
        """The pacing, the time (the providers' timeout, the time a call takes), the IoT state from
        before, and the first manifest: every scenario uploads one (a scenario without a manifest
        would check nothing), so ``teardown`` always has one to check."""
        self.provider_timeout, self.call_seconds = provider_timeout, call_seconds
        for queue in self.manifest_queues.values():
            queue.visibility_timeout = defaults.visibility_timeout(provider_timeout)
        if window is not None:
            # Backpressure: a window of ``window`` certificates (1 minute at ``window``/60 certificates per second).
            self.provider_settings = dataclasses.replace(
                self.provider_settings, import_window_minutes=1.0,
                iot_tps={**DEFAULT_IOT_TPS, "RegisterCertificateWithoutCA": window / 60})
            # A paused manifest's continuation is delayed until the importer made room: at quiescence
            # the import queue goes first (the model SQS delivers delayed messages at once).
            self.queues = (self.import_queue, *self.manifest_queues.values())
        self.tuning = Tuning(checkpoint_every=checkpoint_every, checkpoint_seconds=1e9,
                             max_entries_per_invocation=max_entries, send_attempts=send_attempts, send_backoff=0.0)
        for i in sorted(preseed):
            device = _device(i)
            self.world.iot.register_certificate_without_ca(certificatePem=device.pem.decode(), status="ACTIVE")
            self.world.iot.create_thing(thingName=device.name, attributePayload={"attributes": FOREIGN})
        self.preseeded = set(preseed)
        if first is not None:
            self.upload(first, vendor)

    # -- rules -------------------------------------------------------------------------------------

    @precondition(lambda self: len(self.uploads) < MAX_UPLOADS)
    @rule(entries=ENTRIES, vendor=st.sampled_from(VENDORS))
    def upload(self, entries: list[int | None], vendor: str = "generated") -> None:
        """A manifest in S3 and its S3 event on its vendor's manifest queue: a generated-vendor text
        file, or an Infineon reel (a 7z the provider extracts once into a staged object)."""
        if vendor == "infineon":
            key = f"reel-{next(_keys)}.7z"
            body, positions = _reel(_reel_files(entries))
        else:
            key = f"batch-{next(_keys)}.txt"
            positions = tuple(entries)
            body = _manifest_bytes(positions)
        event = put_and_event(self.world.s3, BUCKET, key, body)
        obj = event["Records"][0]["s3"]["object"]
        mid = manifest_id(vendor, BUCKET, key, obj["versionId"])
        self.uploads.append(Upload(mid, positions, vendor))
        self.sqs.send_message(QueueUrl=self.manifest_queues[vendor].url, MessageBody=json.dumps(event))

    @rule(index=st.integers(0, MAX_UPLOADS - 1))
    def old_checkpoint(self, index: int) -> None:
        """A manifest part-way through as an earlier release left it: its checkpoint without a
        ``cursor`` and none of its claims (``test_provider_cursor``'s old checkpoint). The provider
        must re-read from the top, skip to the checkpoint and claim those entries again."""
        ddb = self.world.dynamodb  # past the faults: this is the upgrade, not an invocation
        table = AuditTable(ddb, TABLE)
        candidates = []
        for upload in self.uploads:
            summary = table.get_summary(upload.manifest_id) or {}
            if (summary.get("state") in UNFINISHED_STATES and not summary.get("parse_done")
                    and int(summary.get("checkpoint") or 0) > 0 and "cursor" in summary):
                candidates.append((upload.manifest_id, int(summary["checkpoint"])))
        if not candidates:
            return
        mid, checkpoint = candidates[index % len(candidates)]
        ddb.update_item(TableName=TABLE, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
                        UpdateExpression="REMOVE #c", ExpressionAttributeNames={"#c": "cursor"})
        claims = ddb.query(TableName=TABLE, KeyConditionExpression="pk = :pk",
                           ExpressionAttributeValues=to_item({":pk": claims_pk(mid)}))["Items"]
        for item in claims:
            ddb.delete_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})
        self.old_checkpoints[mid] = checkpoint
        self.paths["old checkpoint made"] += 1

    @rule(kind=st.sampled_from(FAULT_KINDS), api=st.none() | st.sampled_from(TARGETS), nth=st.integers(0, 12),
          detail=st.integers(1, 1023))
    def arm_fault(self, kind: str, api: str | None, nth: int, detail: int) -> None:
        self.plan.arm(Fault(kind, api, nth, detail))

    @precondition(lambda self: any(q.visible for q in self.queues))
    @rule(queue=st.integers(0, 2), start=st.integers(0, 20), size=st.integers(1, 10))
    def deliver(self, queue: int, start: int, size: int) -> None:
        q = self._nonempty(queue)
        messages = q.receive(start, size if q is self.import_queue else 1)
        self._settle(q, messages, self._invoke(q, messages))

    @precondition(lambda self: any(q.visible for q in self.queues))
    @rule(queue=st.integers(0, 2), index=st.integers(0, 20))
    def duplicate(self, queue: int, index: int) -> None:
        self._nonempty(queue).duplicate(index)

    @precondition(lambda self: any(q.visible for q in self.queues))
    @rule(first=st.tuples(st.integers(0, 2), st.integers(0, 20)), second=st.tuples(st.integers(0, 2), st.integers(0, 20)),
          same_message=st.booleans(), schedule=st.lists(st.integers(0, 1), max_size=80))
    def two_invocations(self, first: tuple[int, int], second: tuple[int, int], same_message: bool,
                        schedule: list[int]) -> None:
        qa = self._nonempty(first[0])
        a = qa.receive(first[1], 1)
        if same_message or not any(q.visible for q in self.queues):
            qb, b = qa, a
            # SQS delivers the message it handed to the first invocation again (at-least-once; not its
            # visibility timeout running out, which is six times the function's timeout)
            for message in a:
                message.receive_count += 1
            qa.held.extend(a)
        else:
            qb = self._nonempty(second[0])
            b = qb.receive(second[1], 1)
        tasks = self.scheduler.run([lambda: self._invoke(qa, a), lambda: self._invoke(qb, b)], schedule)
        for task, (q, messages) in zip(tasks, ((qa, a), (qb, b)), strict=True):
            self._settle(q, messages, task.result if task.error is None else [], task.error)

    # -- invocations -------------------------------------------------------------------------------

    def _nonempty(self, choice: int) -> ModelQueue:
        candidates = [q for q in self.queues if q.visible]
        return candidates[choice % len(candidates)]

    def _invoke(self, queue: ModelQueue, messages: list[Any]) -> list[Any]:
        """One Lambda invocation on ``messages``; returns those it succeeded with (deleted by the ESM)."""
        try:
            if queue is self.import_queue:
                return self._importer_invocation(queue, messages)
            return self._provider_invocation(queue, messages)
        except Crash:
            return []

    def _lambda_failure(self, exc: Exception) -> None:
        """A handler failed, and SQS will deliver the message again: fine if a planned fault caused
        it (``FaultPlan.injected``) or it is one of the product's retry errors (``RETRY_ERRORS``);
        anything else (a TypeError, a KeyError, an error moto answered a malformed request with)
        is a bug in the product or the harness, and fails the scenario."""
        if not (self.plan.injected(exc) or isinstance(exc, RETRY_ERRORS)):
            raise exc

    def _settle(self, queue: ModelQueue, messages: list[Any], succeeded: list[Any],
                error: BaseException | None = None) -> None:
        if error is not None and not isinstance(error, Crash):
            raise error  # a harness failure inside a scheduled invocation
        for message in succeeded:
            message.deleted = True
        queue.release(messages)

    def _provider_invocation(self, queue: ModelQueue, messages: list[Any]) -> list[Any]:
        vendor = next(v for v, q in self.manifest_queues.items() if q is queue)
        settings_ = dataclasses.replace(self.provider_settings, vendor=vendor, manifest_queue_url=queue.url)
        provider = Provider(vendor, settings=settings_, s3=self.clients["s3"],
                            sqs=self.clients["sqs"], dynamodb=self.clients["dynamodb"], tuning=self.tuning,
                            sleep=self.clock.advance, clock=self.clock, wall_clock=self.clock)
        done = []
        timeouts = self.lambda_time.timeouts
        try:
            with self.lambda_time.invocation(self.provider_timeout, self.call_seconds) as context:
                for message in messages:
                    try:
                        results = provider.handle_record(SQSRecord(message.record(queue.arn)), context)
                    except Exception as exc:  # noqa: BLE001 -- a batch item failure: SQS delivers it again
                        self._lambda_failure(exc)
                        continue
                    done.append(message)
                    if any(r.outcome == "chunked" for r in results) and (
                            context.get_remaining_time_in_millis() < SAFETY_MARGIN_SHARE * self.provider_timeout * 1000):
                        self.paths["provider handed over near its deadline"] += 1
        except Crash:
            if self.lambda_time.timeouts > timeouts:
                self.paths["Lambda ended a provider at its timeout"] += 1
            raise
        finally:
            metrics.clear_metrics()
        return done

    def _importer_invocation(self, queue: ModelQueue, messages: list[Any]) -> list[Any]:
        """What ``lambdas/importer/import_handler.py`` does with a batch, sequentially."""
        settings_ = self.importer_settings
        importer = Importer(self.clients["iot"], AuditTable(self.clients["dynamodb"], TABLE), settings_,
                            arns=CertificateArns.from_function_arn(FUNCTION_ARN, region=REGION),
                            throttle=Throttle.from_settings(settings_, sleep=self.clock.advance, clock=self.clock,
                                                            rng=lambda: 0.0, backoff=Backoff(max_attempts=3)))
        with self.lambda_time.invocation(IMPORTER_TIMEOUT, IMPORTER_CALL_SECONDS) as context:
            return self._import_batch(importer, messages, context.deadline)

    def _import_batch(self, importer: Importer, messages: list[Any], deadline: float) -> list[Any]:
        pending: list[Any] = []
        failed: set[str] = set()
        touched: set[str] = set()
        for message in messages:
            try:
                outcome = importer.handle(message.body, message_id=message.message_id,
                                          receive_count=message.receive_count, deadline=deadline, complete=False,
                                          pending=pending)
            except RetryLater as exc:
                failed.add(message.message_id)
                if exc.recorded:
                    touched.add(exc.manifest_id)
                continue
            if not any(p.outcome is outcome for p in pending) and outcome.manifest_id and (
                    outcome.recorded or outcome.redelivery):
                touched.add(outcome.manifest_id)
        try:
            importer.record_pending(pending)
        except Exception as exc:  # noqa: BLE001 -- the handler returns every pending record to SQS
            self._lambda_failure(exc)
            failed.update(p.message_id for p in pending)
        else:
            touched.update(p.outcome.manifest_id for p in pending
                           if p.outcome.manifest_id and (p.outcome.recorded or p.outcome.redelivery))
        try:
            importer.complete(touched)
        except Exception as exc:  # noqa: BLE001 -- the handler raises: the whole batch goes back to SQS
            self._lambda_failure(exc)
            return []
        return [m for m in messages if m.message_id not in failed]

    # -- the end: quiescence, watchdog, invariants -------------------------------------------------

    def _quiesce(self) -> None:
        for delivery in range(QUIESCENCE_LIMIT):
            if self.use_watchdog and delivery and delivery % SWEEP_EVERY == 0:
                self._sweep()  # a long run of deliveries (backpressure pauses) spans scheduled sweeps
            queue = next((q for q in self.queues if q.visible), None)
            if queue is None:
                return
            messages = queue.receive(0, 10 if queue is self.import_queue else 1)
            self._settle(queue, messages, self._invoke(queue, messages))
        raise AssertionError(f"no quiescence after {QUIESCENCE_LIMIT} deliveries (livelock); faults: {self.plan.fired}")

    def _watchdog(self) -> Watchdog:
        """The real watchdog, its clock far enough ahead that every unfinished manifest is idle: past the
        stall threshold from the virtual clock, and from the last sweep's own instant, which stamped the
        manifests it resumed (``bump_chain``). On the virtual clock alone, a manifest resumed by one sweep
        whose continuation changed nothing was not idle yet at the next (seen in a shard: "the watchdog
        checked 0 manifests, 1 were unfinished and idle"; known scenario 6)."""
        self.swept_at = max(self.swept_at, self.clock.now) + STALL_AFTER_SECONDS + 60
        instant = self.swept_at
        return Watchdog(audit=AuditTable(self.clients["dynamodb"], TABLE), sqs=self.clients["sqs"],
                        manifest_queue_urls={v: q.url for v, q in self.manifest_queues.items()},
                        import_queue_url=self.import_queue.url, import_dlq_url=self.import_dlq.url,
                        stall_after_seconds=STALL_AFTER_SECONDS, clock=lambda: instant)

    def _in_states(self, states: Collection[str]) -> set[str]:
        """The uploaded manifests in one of ``states`` (read past the faults)."""
        table = AuditTable(self.world.dynamodb, TABLE)
        return {u.manifest_id for u in self.uploads
                if (table.get_summary(u.manifest_id) or {}).get("state") in states}

    def _sweep(self) -> SweepResult | None:
        """One watchdog sweep; None if a planned fault failed it (any other error fails the test)."""
        unfinished, stalled = self._in_states(UNFINISHED_STATES), self._in_states((STALLED,))
        try:
            swept = self._watchdog().sweep()
        except BaseException as exc:  # noqa: BLE001 -- only a planned fault may fail a sweep
            if not self.plan.injected(exc):
                raise
            return None  # the next scheduled sweep runs it again
        assert swept.checked == len(unfinished), (
            f"the watchdog checked {swept.checked} manifests, {len(unfinished)} were unfinished and idle")
        assert set(swept.looked_again) <= stalled, f"the watchdog looked again at a manifest not STALLED: {swept}"
        assert set(swept.resumed) | set(swept.stalled) <= unfinished | set(swept.looked_again), (
            f"watchdog acted on finished ones: {swept}")
        self.sweeps.append(swept)
        return swept

    def _observe(self, api: str, kwargs: dict[str, Any]) -> None:
        """Every AWS call, before it is sent: counts the provider paths the path tests ask for."""
        key = str(kwargs.get("Key", ""))
        if api == "PutObject" and key.startswith(STAGING_PREFIX):
            self.paths["infineon reel staged"] += 1
        elif api == "GetObject" and key.startswith(STAGING_PREFIX):
            self.paths["infineon staged object read from a cursor" if "Range" in kwargs
                       else "infineon staged object read from the top"] += 1
        elif api in ("TransactWriteItems", "PutItem") and self.old_checkpoints:
            # claims are plain conditional puts (``thingpress.audit.claims``)
            items = ([item.get("Put", {}).get("Item", {}) for item in kwargs["TransactItems"]]
                     if api == "TransactWriteItems" else [kwargs.get("Item", {})])
            for item in items:
                put = from_item(item)
                mid = str(put.get("pk", "")).removeprefix(claims_pk(""))
                if mid in self.old_checkpoints and put.get("sk") and int(put["position"]) <= self.old_checkpoints[mid]:
                    self.paths["old checkpoint: entry before it claimed again"] += 1

    def teardown(self) -> None:
        assert self.uploads, "every scenario uploads a manifest (setup)"
        try:
            self._finish()
        finally:
            SEEN_PATHS.update(set(self.paths))
            if currently_in_test_context():  # not in the known scenarios, which run the machine by hand
                for path in sorted(self.paths):
                    event(path)

    def _finish(self) -> None:
        """Quiescence, then watchdog sweeps (each followed by quiescence) until one resumes nothing.

        A resumed manifest may get only part of the way: an invocation Lambda ends at its timeout
        between its hand-over and the continuation's send leaves no message to go on with, and the
        next sweep resumes it again (seen: 4, 8, then 13 of 13 entries over three sweeps, after two
        sweeps a planned fault failed). So sweeps go on while each resume moves something (a
        manifest, or a planned fault striking); a resume after which nothing moved is a livelock."""
        resumed, last = False, None
        for _ in range(MAX_SWEEPS if self.use_watchdog else 0):
            self._quiesce()
            moved = self._progress()
            assert not (resumed and moved == last), (
                f"the watchdog's last resume moved nothing (livelock); faults: {self.plan.fired}")
            last = moved
            swept = self._sweep()
            if swept is not None and not swept.resumed:
                break
            resumed = swept is not None
        else:
            if self.use_watchdog:
                raise AssertionError(f"still resuming after {MAX_SWEEPS} sweeps; faults: {self.plan.fired}")
        self._quiesce()
        self._check()

    def _progress(self) -> tuple[Any, ...]:
        """Where the scenario stands: each manifest's checkpoint and counters (read past the faults; not
        its chain, which the watchdog's own resume moves), and how many planned faults have struck."""
        table = AuditTable(self.world.dynamodb, TABLE)
        summaries = [table.get_summary(u.manifest_id) or {} for u in self.uploads]
        return (len(self.plan.fired), *(tuple(s.get(k) for k in (
            "state", "checkpoint", "entries", "imported", "already_present", "failed", "rejected",
            "outstanding")) for s in summaries))

    def _check(self) -> None:
        faults = f"faults that struck: {self.plan.fired}"
        # 1. nothing left in flight, nothing in a DLQ
        assert not self.manifest_dlq.visible, f"manifest messages went to the DLQ; {faults}"
        assert not self.import_dlq.visible, f"import messages went to the DLQ; {faults}"
        ddb = self.world.dynamodb
        table = AuditTable(ddb, TABLE)
        shared: dict[int, list[str]] = {}
        for upload in self.uploads:
            first = upload.first_positions()
            summary = table.get_summary(upload.manifest_id)
            rows = table.entries(upload.manifest_id)
            # 2. the manifest is complete and its summary adds up
            assert summary is not None, f"manifest {upload.manifest_id} has no summary; {faults}"
            state = {k: summary.get(k) for k in ("state", "parse_done", "checkpoint", "entries", "queued",
                                                 "duplicates", "rejected", "imported", "already_present", "failed",
                                                 "outstanding")}
            assert summary["state"] == COMPLETE, f"manifest stuck: {state}; {faults}"
            total = (summary["imported"] + summary["already_present"] + summary["rejected"] + summary["failed"]
                     + summary["duplicates"])
            assert total == summary["entries"] == len(upload.entries), (
                f"summary does not add up to {len(upload.entries)} entries: {state}; {faults}")
            assert summary["outstanding"] == 0, f"outstanding certificates: {state}; {faults}"
            assert summary["checkpoint"] == len(upload.entries), f"checkpoint short of the end: {state}; {faults}"
            # 3. every entry in exactly one terminal state
            refusals = {r["position"] for r in rows if r["sk"].startswith("R#")}
            outcomes = {r["fingerprint"]: r for r in rows if r["sk"].startswith("C#")}
            bad = {p for p, i in enumerate(upload.entries, start=1) if i is None}
            assert refusals == bad, f"refusal rows at {sorted(refusals)}, bad lines at {sorted(bad)}; {faults}"
            assert set(outcomes) == {_fingerprint(i) for i in first}, (
                f"outcome rows for {len(outcomes)} certificates, expected {len(first)}: {state}; {faults}")
            assert summary["duplicates"] == len(upload.entries) - len(bad) - len(first), f"duplicates: {state}; {faults}"
            assert summary["queued"] == len(first), f"queued: {state}; {faults}"
            by_status = {s: sum(1 for r in outcomes.values() if r["status"] == s) for s in STATUSES}
            assert by_status[FAILED] == 0 and by_status[REJECTED] == 0, (
                f"certificates FAILED or REJECTED: {[(r['position'], r['status'], r.get('reason')) for r in outcomes.values()]}; "
                f"{faults}")
            assert (summary["imported"], summary["already_present"], summary["rejected"]) == (
                by_status[IMPORTED], by_status[ALREADY_PRESENT], len(bad)), (
                f"counters differ from the rows {by_status}: {state}; {faults}")
            for i in first:
                status = outcomes[_fingerprint(i)]["status"]
                if i in self.preseeded:
                    assert status == ALREADY_PRESENT, f"pre-existing device {i} recorded {status}; {faults}"
                shared.setdefault(i, []).append(status)
        for i, statuses in shared.items():
            if i not in self.preseeded:
                assert IMPORTED in statuses, f"device {i} never IMPORTED (statuses {statuses}); {faults}"
        # 4. IoT holds exactly the expected certificates and things (read from moto's backend: the
        #    check is not under test, and two IoT calls per device were a fifth of a scenario's time)
        imported = set(shared)  # the devices some manifest named
        expected = imported | self.preseeded
        iot = get_backend("iot")[DEFAULT_ACCOUNT_ID][REGION]
        certificates = {c.certificate_id: c.status for c in iot.certificates.values()}
        assert certificates == {_fingerprint(i): "ACTIVE" for i in expected}, f"IoT certificates; {faults}"
        things = {t.thing_name: dict(t.attributes) for t in iot.things.values()}
        assert set(things) == {_device(i).name for i in expected}, f"IoT things {sorted(things)}; {faults}"
        arns = CertificateArns.from_function_arn(FUNCTION_ARN, region=REGION)
        # a pre-existing device no manifest named is left alone: nothing attached
        attached = {(arns.certificate(_fingerprint(i)), _device(i).name) for i in imported}
        assert set(iot.principal_things) == attached, f"IoT thing principals; {faults}"
        assert set(iot.principal_policies) == {(arn, POLICY) for arn, _ in attached}, f"IoT policies; {faults}"
        for i in expected:
            name = _device(i).name
            if i in self.preseeded:
                assert things[name] == FOREIGN, f"pre-existing thing {name} was changed: {things[name]}; {faults}"
            else:
                manifests = {u.manifest_id for u in self.uploads if i in u.entries}
                assert things[name].get("thingpress_manifest") in manifests, f"{name} attributes; {faults}"


#: The scenarios run in shards of about this many, each shard a test of its own: under pytest-xdist
#: (``make test``) the worker the deployment's tests leave free starts on them at once, and the others
#: take the shards still waiting once their groups are done (one 500-scenario test kept the free worker
#: busy long after the others had finished; with shards of 100, a 100-second shard taken up by the
#: preview's worker at 336 s was the last 100 s of a run). A shard still goes through both ``PATHS``
#: (in about half and a fifth of its scenarios: all 50 miss the rarer one about once in 20,000 shards).
SHARD_SCENARIOS = 50
SHARDS = max(1, round(SCENARIOS / SHARD_SCENARIOS))
SETTINGS = settings(max_examples=-(-SCENARIOS // SHARDS), stateful_step_count=STEPS, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


@pytest.mark.parametrize("shard", range(SHARDS))
def test_exactly_once_under_faults(world: World, shard: int) -> None:
    before = SEEN_PATHS.copy()
    run_state_machine_as_test(lambda: ExactlyOnce(world), settings=SETTINGS)
    seen = SEEN_PATHS - before
    if SETTINGS.max_examples >= SHARD_SCENARIOS // 2:
        # A shard of the default budget goes through both (in about half and a fifth of its
        # scenarios); five quick ones may not: the path tests below cover them every run.
        for path in PATHS:
            assert seen[path], f"no scenario of shard {shard} went through {path!r}: {dict(seen)}"


# -- known scenarios: the shrunk examples of the defects the state machine found, replayed every run --
#
# ``watchdog`` False: SQS redelivery alone must finish the manifest (the watchdog is for what no
# message can resume any more, not for the provider's own bookkeeping).


def _scenario(world: World, watchdog: bool, setup: dict[str, Any], *steps: tuple[str, dict[str, Any]]) -> None:
    machine = ExactlyOnce(world)
    machine.use_watchdog = watchdog
    machine.setup(**setup)
    for name, args in steps:
        getattr(machine, name)(**args)
    machine.teardown()


_PLAIN = {"send_attempts": 1, "preseed": frozenset()}
#: the setup and steps scenarios 6 and 7 share (a generated manifest whose checkpoints the ``old_checkpoint``
#: rule keeps turning into an earlier release's, at 3 s a call in a 60 s provider)
_RESUMED = {"checkpoint_every": 1, "call_seconds": 3.0, "send_attempts": 1, "preseed": frozenset([0]),
            "vendor": "generated", "max_entries": 16, "provider_timeout": 60, "window": None,
            "first": [None, None, None, 1, None, None, 0, None, 0, *[None] * 6]}
_RESUMED_DELIVERY = ("deliver", {"queue": 0, "size": 9, "start": 19})
_OLD_CHECKPOINT = ("old_checkpoint", {"index": 0})
_RESUMED_PAIR = ("two_invocations", {"first": (1, 18), "same_message": True, "schedule": [1, 0, 0, 0, 0, 0, 0, 0],
                                     "second": (1, 18)})
_RESUMED_END = (_OLD_CHECKPOINT, ("arm_fault", {"api": None, "detail": 7, "kind": "crash_before", "nth": 9}),
                _OLD_CHECKPOINT)
KNOWN: dict[str, tuple[Any, ...]] = {
    # issue 10 defect 1: an SDK ValueError inside flush() is taken for an oversized entry: the ten
    # entries flush() had taken are never sent but counted as queued; the manifest never completes.
    "1-flush-valueerror": (True, {"checkpoint_every": 12, "max_entries": 16, **_PLAIN},
                           ("upload", {"entries": list(range(POOL))}),
                           ("arm_fault", {"kind": "sdk_serializer_error", "api": "SendMessageBatch", "nth": 0,
                                          "detail": 1})),
    # issue 10 defect 2: the checkpoint UpdateItem is applied, its answer lost; botocore's retry fails
    # the condition; the provider takes itself to be behind and acknowledges: PARSING for ever.
    "2-ambiguous-checkpoint": (False, {"checkpoint_every": 1, "max_entries": 2, **_PLAIN},
                               ("upload", {"entries": [None]}),
                               ("arm_fault", {"kind": "ambiguous", "api": "UpdateItem", "nth": 0, "detail": 1})),
    # issue 10 defect 3: B (behind) acknowledges the message A (ahead) also holds; A dies; nothing resumes.
    "3-behind-acks": (False, {"checkpoint_every": 1, "max_entries": 16, **_PLAIN},
                      ("upload", {"entries": [None, None]}),
                      ("arm_fault", {"kind": "crash_before", "api": "BatchWriteItem", "nth": 2, "detail": 1}),
                      ("two_invocations", {"first": (0, 0), "second": (0, 0), "same_message": True,
                                           "schedule": [0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1]})),
    # issue 10 defect 4: an entry in neither Successful nor Failed is counted as sent.
    "4-batch-omits": (True, {"checkpoint_every": 1, "max_entries": 2, **_PLAIN},
                      ("upload", {"entries": [0]}),
                      ("arm_fault", {"kind": "batch_omits", "api": None, "nth": 0, "detail": 1})),
    # new: the final checkpoint is applied, the invocation dies before try_complete; a redelivery
    # finds the manifest parsed and skips it: QUEUED for ever with nothing outstanding.
    "5-crash-before-complete": (False, {"checkpoint_every": 1, "max_entries": 2, **_PLAIN},
                                ("upload", {"entries": [None]}),
                                ("arm_fault", {"kind": "crash_before", "api": "UpdateItem", "nth": 2, "detail": 1})),
    # the model's own: a sweep resumes a manifest (stamped at the watchdog's instant); its continuation
    # dies before it changes anything; the next sweep, on a clock only minutes later, found the manifest
    # not idle and skipped it, and the model's check that every unfinished manifest was looked at failed.
    "6-resumed-by-the-last-sweep": (True, _RESUMED, _RESUMED_DELIVERY,
                                    ("arm_fault", {"api": None, "detail": 244, "kind": "crash_before", "nth": 6}),
                                    *[_OLD_CHECKPOINT] * 5, _RESUMED_PAIR, *_RESUMED_END),
    # the model's own: each resume gets part of the way (the invocation is ended at its timeout between its
    # hand-over and the continuation's send), and two sweeps fail by planned faults: four sweeps were too few.
    "7-resumed-part-way-each-time": (True, _RESUMED, _RESUMED_DELIVERY,
                                     ("arm_fault", {"api": None, "detail": 244, "kind": "crash_before", "nth": 0}),
                                     *[_OLD_CHECKPOINT] * 4,
                                     ("arm_fault", {"api": None, "detail": 365, "kind": "ambiguous_error", "nth": 12}),
                                     _RESUMED_PAIR, *_RESUMED_END),
}


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_known_scenario(world: World, name: str) -> None:
    watchdog, setup, *steps = KNOWN[name]
    _scenario(world, watchdog, setup, *steps)


# -- the provider paths the scenarios must reach, each also run on its own ---------------------------
#
# The shards draw them (``upload``'s vendor, the ``old_checkpoint`` rule; ``event`` counts them, see
# ``--hypothesis-show-statistics``); these scenarios go through them every run, and assert they did.


def _path_machine(world: World, **setup: Any) -> ExactlyOnce:
    machine = ExactlyOnce(world)
    machine.setup(**{"checkpoint_every": 1, "max_entries": 2, **_PLAIN, **setup})
    return machine


def test_an_infineon_reel_is_staged_once_and_its_chunks_read_the_staged_object_from_the_cursor(world: World) -> None:
    machine = _path_machine(world, vendor="infineon", first=[3, None, 0, 7, 3, 1])
    assert machine.uploads[0].vendor == "infineon" and len(machine.uploads[0].entries) == 5  # 3 named once
    machine.teardown()
    assert machine.paths["infineon reel staged"] == 1, machine.paths
    assert machine.paths["infineon staged object read from a cursor"] >= 2, machine.paths  # 5 entries, 2 a chunk


def test_a_provider_near_its_deadline_hands_over_and_the_next_invocation_goes_on(world: World) -> None:
    # a 60 s invocation (the local target's), 2 s a call: the safety margin (10 s) is reached after
    # 25 calls, before the 16-entry limit at a checkpoint per entry (3 calls an entry: 6 s, inside the margin)
    machine = _path_machine(world, max_entries=16, provider_timeout=60, call_seconds=2.0, first=list(range(POOL)))
    machine.teardown()
    assert machine.paths["provider handed over near its deadline"] >= 1, machine.paths
    assert machine.lambda_time.timeouts == 0


def test_an_invocation_lambda_ends_at_its_timeout_comes_back_after_the_visibility_timeout(world: World) -> None:
    machine = _path_machine(world, provider_timeout=60, call_seconds=25.0, first=[0, 1, 2])
    started = machine.clock.now
    machine.deliver(queue=0, start=0, size=1)  # 25 s, 50 s, then Lambda ends it at the third call
    assert machine.lambda_time.timeouts == 1 and machine.paths["Lambda ended a provider at its timeout"] == 1
    [message] = machine.manifest_queue.visible
    assert message.due == pytest.approx(started + defaults.visibility_timeout(60))
    machine.call_seconds = 0.0
    machine.teardown()  # received again once the visibility timeout ran out: the manifest completes
    assert machine.clock.now >= started + defaults.visibility_timeout(60)


@pytest.mark.parametrize("vendor", VENDORS)
def test_an_old_checkpoint_is_resumed_from_the_top_claiming_the_entries_before_it_again(world: World,
                                                                                       vendor: str) -> None:
    # device 0 at positions 1 and 4: found a duplicate only if position 1 is claimed again
    machine = _path_machine(world, vendor=vendor, first=[0, 1, 2, 0, 4] if vendor == "generated" else [0, 1, 2, 4])
    machine.deliver(queue=0, start=0, size=1)  # the first chunk: checkpoint 2, a continuation queued
    machine.old_checkpoint(index=0)
    assert machine.old_checkpoints == {machine.uploads[0].manifest_id: 2}
    machine.teardown()
    assert machine.paths["old checkpoint: entry before it claimed again"] >= 2, machine.paths


def test_injected_errors_match_botocore(world: World) -> None:
    """The injected DynamoDB errors are what botocore makes of DynamoDB's answer (its own parser, its
    modelled classes): what ``AuditTable`` reads from them is what it would read from AWS."""
    import botocore.parsers

    client = world.dynamodb
    model = client.meta.service_model
    parser = botocore.parsers.create_parser(model.protocol)
    items = [{"Put": {}}, {"Put": {}}, {"Update": {}}]
    made_errors = [(api, conflict_error(client, api, kwargs, detail=4)) for api, kwargs in (
        ("TransactWriteItems", {"TransactItems": items}), ("PutItem", {}), ("UpdateItem", {}), ("DeleteItem", {}))]
    made_errors += [("UpdateItem", client_error(client, "UpdateItem", "ThrottlingException", 400, "Rate exceeded")),
                    ("PutItem", client_error(client, "PutItem", "InternalServerError", 500, "lost"))]
    for api, made in made_errors:
        code = made.response["Error"]["Code"]
        wire = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}",
                **{k: v for k, v in made.response.items() if k not in ("Error", "ResponseMetadata")}}
        answer = {"status_code": made.response["ResponseMetadata"]["HTTPStatusCode"],
                  "headers": {"x-amzn-requestid": "model-harness"},
                  "body": json.dumps(wire).encode()}
        parsed = parser.parse(answer, model.operation_model(api).output_shape)
        parsed.update(parser.parse(answer, model.shape_for_error_code(code)))  # Endpoint._add_modeled_error_fields
        assert type(made) is client.exceptions.from_code(code)
        assert made.operation_name == api
        assert {k: v for k, v in made.response.items() if k != "ResponseMetadata"} == {
            k: v for k, v in parsed.items() if k != "ResponseMetadata"}
        assert made.response["ResponseMetadata"]["HTTPStatusCode"] == parsed["ResponseMetadata"]["HTTPStatusCode"]
    reasons = conflict_error(client, "TransactWriteItems", {"TransactItems": items}, detail=4).response[
        "CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "TransactionConflict", "None"]
    assert isinstance(conflict_error(client, "PutItem", {}, 0), client.exceptions.TransactionConflictException)
