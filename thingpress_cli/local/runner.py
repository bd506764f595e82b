"""Lambda without Docker: run the deployed functions on their SQS event source mappings.

For every event source mapping the emulator holds (``ListEventSourceMappings``),
the runner polls the mapping's queue and invokes the function the way Lambda's
SQS poller does:

* **The deployed code.** The function zip and its layer zips are downloaded from
  the emulator (``GetFunction`` ``Code.Location``, ``GetLayerVersion``
  ``Content.Location``), cached by ``CodeSha256`` under ``build/local/code/`` and
  unpacked in Lambda's layout: the task root, and ``opt/`` with the layers merged
  in order (``opt/python`` on the path).
* **A clean interpreter.** Each worker is the base Python (not the venv) run with
  ``-S -P`` and ``PYTHONPATH=<task root>:<opt>/python`` in an environment holding
  only the function's deployed variables plus what Lambda sets (region, function
  name, memory, handler, task root), the emulator endpoint and, as on Lambda, the
  temporary credentials of the function's execution role (``AssumeRole`` on the
  emulator: :mod:`.s3_rules` knows the caller's role by them). See :mod:`.bootstrap`.
* **Warm workers.** One process per concurrent slot, reused across invocations;
  re-spawned after a crash or a timeout (the worker is killed at the function's
  timeout and the whole batch counts as failed).
* **Mapping settings.** Batch size; concurrency = ``ScalingConfig.MaximumConcurrency``,
  else the function's reserved concurrency, else :data:`DEFAULT_CONCURRENCY`;
  ``ReportBatchItemFailures`` partial batch responses (only successful messages are
  deleted; an invalid response fails the whole batch, as in Lambda); a failed
  invocation deletes nothing, so its messages reappear after the visibility
  timeout and the emulator's SQS moves them to the DLQ after ``maxReceiveCount``.
* **/tmp as Lambda sizes it.** Each worker runs in its own mount namespace with a
  tmpfs of the function's ``EphemeralStorage`` size (512 MB by default) as its
  ``TMPDIR``, so a function that overflows its /tmp on AWS overflows it here
  (``ENOSPC``). Where mounts are not permitted (not root), the runner says so once
  in its log and runs without the limit.
* **Errors as Lambda reports them.** ``errorType``/``errorMessage``/``stackTrace``
  go to ``build/local/logs/<function>.log`` (where the function's own output goes
  too) and, in verbose mode, to stderr.
* **Redeploys.** The mapping list and each function's configuration are re-read
  every :data:`REFRESH_SECONDS`; a changed code hash, layer or setting restarts
  that mapping's workers on the new code.
* **Schedules.** Every enabled EventBridge rule with a ``rate(...)`` schedule
  expression whose target is a function (``ListRules``, ``ListTargetsByRule``) gets
  a :class:`SchedulePoller`: one warm worker that invokes the function with
  EventBridge's scheduled-event payload once per period (the first run one period
  after the rule is found, as EventBridge does). ``THINGPRESS_LOCAL_SCHEDULE_SECONDS``
  (or ``--schedule-seconds``) replaces every period, so tests do not wait minutes.
  ``cron(...)`` rules are reported and not run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.config

from thingpress_cli.local import recorder, state

BOOTSTRAP = Path(__file__).resolve().parent / "bootstrap.py"
CODE_DIR = state.LOCAL_DIR / "code"
DEFAULT_CONCURRENCY = 2
REFRESH_SECONDS = 2.0
#: Long-poll wait; short enough that a stop or a redeploy is noticed quickly.
POLL_WAIT_SECONDS = 2
#: replaces the period of every schedule (seconds), for tests and demos.
SCHEDULE_SECONDS_SETTING = "THINGPRESS_LOCAL_SCHEDULE_SECONDS"
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_RATE_UNIT_SECONDS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
#: Variables Lambda itself sets; a function cannot override them.
RESERVED = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def base_python() -> str:
    """The interpreter the venv was made from: no site-packages of the project."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidate = Path(sys.base_prefix) / "bin" / version
    return str(candidate if candidate.is_file() else Path(sys.base_prefix) / "bin" / "python3")


def worker_pids(function_name: str, endpoint: str | None = None) -> list[int]:
    """The worker processes running ``function_name`` for fault injection, found by their Lambda environment.

    Only those of ``endpoint``'s emulator (default: the one this checkout's local state
    records): other checkouts on the machine run functions of the same names against
    emulators of their own, and are not this run's to kill.
    """
    from thingpress_cli.local import emulator

    if endpoint is None:
        current = emulator.running()
        if current is None:
            return []
        endpoint = current.url
    wanted = f"AWS_LAMBDA_FUNCTION_NAME={function_name}".encode()
    own = f"AWS_ENDPOINT_URL={endpoint}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environ and own in environ:
            pids.append(int(entry.name))
    return pids


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Layer:
    arn: str
    sha: str
    location: str


@dataclass(frozen=True)
class FunctionSpec:
    """What a deployed function runs with, as read from the emulator."""

    name: str
    arn: str
    handler: str
    timeout: int
    memory: int
    environment: tuple[tuple[str, str], ...]
    code_sha: str
    code_location: str
    layers: tuple[Layer, ...] = ()
    reserved_concurrency: int | None = None
    architectures: tuple[str, ...] = ("x86_64",)
    #: /tmp size, MB (Lambda's ``EphemeralStorage.Size``).
    ephemeral_mb: int = 512
    #: The execution role's temporary credentials (AWS_ACCESS_KEY_ID, ...), as Lambda hands them
    #: to the function: the emulator knows the caller's role by them (``local/s3_rules.py``).
    credentials: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MappingSpec:
    """An SQS event source mapping and the settings the poller honours."""

    uuid: str
    queue_arn: str
    queue_url: str
    batch_size: int
    concurrency: int
    report_batch_item_failures: bool
    function: FunctionSpec


@dataclass(frozen=True)
class ScheduleSpec:
    """An EventBridge rule with a rate schedule and one function target."""

    rule_name: str
    rule_arn: str
    expression: str
    period: float
    target_id: str
    function: FunctionSpec

    @property
    def key(self) -> str:
        return f"{self.rule_arn}#{self.target_id}"


@dataclass
class Outcome:
    """One invocation's result, as the runner sees it."""

    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    timed_out: bool = False


# --------------------------------------------------------------------------- pure logic


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


def rate_seconds(expression: str) -> float | None:
    """The period of a ``rate(N unit)`` schedule expression in seconds; None for anything else (cron)."""
    match = _RATE.match(expression.strip())
    if not match or int(match.group(1)) < 1:
        return None
    return int(match.group(1)) * _RATE_UNIT_SECONDS[match.group(2)]


def scheduled_event(rule_arn: str, region: str, now: float | None = None) -> dict[str, Any]:
    """The event EventBridge passes to a scheduled rule's target."""
    account = rule_arn.split(":")[4]
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": account, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "region": region,
        "resources": [rule_arn], "detail": {},
    }


def function_environment(spec: FunctionSpec, task_root: Path, opt: Path, endpoint: str, region: str) -> dict[str, str]:
    """The worker's whole environment: the function's variables plus what Lambda sets."""
    env = {k: v for k, v in spec.environment if k not in RESERVED}
    env.update({
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "PYTHONPATH": f"{task_root}{os.pathsep}{opt / 'python'}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
        "_HANDLER": spec.handler,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "THINGPRESS_FUNCTION_ARN": spec.arn,
        "THINGPRESS_LOCAL_BUSY_DIR": str(state.BUSY_DIR),
        **state.client_environment(endpoint),
        **dict(spec.credentials),
    })
    env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    return env


# --------------------------------------------------------------------------- /tmp


def tmp_budget_command(size_mb: int, folder: Path) -> list[str]:
    """A prefix that runs the worker in a private mount namespace with a ``size_mb`` tmpfs on ``folder``.

    The namespace ends with the process, and the tmpfs with it: each execution environment
    starts with an empty /tmp of the function's size, as on Lambda.
    """
    script = 'size="$1"; dir="$2"; shift 2; mount -t tmpfs -o "size=${size}m,mode=1777" tmpfs "$dir" && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(size_mb), str(folder)]


_TMP_BUDGET: dict[str, str | None] = {}


def tmp_budget_available(probe_dir: Path) -> str | None:
    """None when workers can get their own sized tmpfs; else why not (checked once)."""
    if "answer" not in _TMP_BUDGET:
        probe_dir.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(tmp_budget_command(1, probe_dir) + ["true"], capture_output=True, text=True,
                                  timeout=10, check=False)
            _TMP_BUDGET["answer"] = None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")
        except OSError as error:  # no unshare on this machine
            _TMP_BUDGET["answer"] = str(error)
    return _TMP_BUDGET["answer"]


# --------------------------------------------------------------------------- code


class CodeCache:
    """Deployed zips, downloaded once per ``CodeSha256`` and unpacked in Lambda's layout."""

    def __init__(self, root: Path = CODE_DIR) -> None:
        self.root = root
        self._lock = threading.Lock()

    def _unpack(self, kind: str, sha: str, location: str) -> Path:
        key = hashlib.sha256(sha.encode()).hexdigest()[:24]
        target = self.root / kind / key
        if target.is_dir():
            return target
        with urllib.request.urlopen(location, timeout=60) as answer:
            data = answer.read()
        partial = target.with_name(f"{key}.{os.getpid()}.{threading.get_ident()}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        zip_path = partial / ".zip"
        zip_path.write_bytes(data)
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(partial)
        zip_path.unlink()
        try:
            partial.rename(target)
        except OSError:  # another worker won the race: same content
            shutil.rmtree(partial, ignore_errors=True)
        return target

    def layout(self, spec: FunctionSpec) -> tuple[Path, Path]:
        """(task root, opt) for ``spec``: ``opt`` holds its layers merged in order."""
        with self._lock:
            task_root = self._unpack("functions", spec.code_sha, spec.code_location)
            layer_key = hashlib.sha256("|".join(layer.sha for layer in spec.layers).encode()).hexdigest()[:24]
            opt = self.root / "opt" / layer_key
            if not opt.is_dir():
                partial = opt.with_name(f"{layer_key}.partial")
                shutil.rmtree(partial, ignore_errors=True)
                partial.mkdir(parents=True)
                for layer in spec.layers:
                    shutil.copytree(self._unpack("layers", layer.sha, layer.location), partial, dirs_exist_ok=True)
                partial.rename(opt)
            return task_root, opt


# --------------------------------------------------------------------------- workers


class Worker:
    """One warm function process (a Lambda execution environment)."""

    def __init__(self, spec: FunctionSpec, task_root: Path, opt: Path, endpoint: str, region: str, log: Path,
                 tmp_dir: Path | None = None) -> None:
        self.spec = spec
        #: where the worker's /tmp budget is mounted (None: no budget, see :func:`tmp_budget_available`).
        self.tmp_dir = tmp_dir
        self.env = function_environment(spec, task_root, opt, endpoint, region)
        if recorder.enabled():  # every AWS call of the function, per function (so per role): make iam-check
            self.env[recorder.CALLS_ENV] = recorder.calls_file(log.parent, spec.name)
        self.task_root = task_root
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [base_python(), "-S", "-P", str(BOOTSTRAP)]
        env = dict(self.env)
        if self.tmp_dir is not None:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            env["TMPDIR"] = str(self.tmp_dir)
            command = tmp_budget_command(self.spec.ephemeral_mb, self.tmp_dir) + command
        with self.log.open("ab") as sink:
            return subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sink,
                env=env, cwd=self.task_root, bufsize=0,
            )

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Outcome:
        """Run one invocation; kill the worker at the function's timeout."""
        if self.process is None or self.process.poll() is not None:
            self.process = self._spawn()
            self._buffer = b""
        request_id = request_id or str(uuid.uuid4())
        deadline = time.time() + self.spec.timeout
        request = {"event": event, "request_id": request_id, "deadline_ms": deadline * 1000}
        started = time.monotonic()
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
        except BrokenPipeError:
            return self._crashed(request_id, started)
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.time()
            if remaining <= 0:
                return self._timed_out(request_id, started)
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return self._crashed(request_id, started)
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        answer = json.loads(line)
        duration = (time.monotonic() - started) * 1000
        return Outcome(ok=answer["ok"], result=answer.get("result"), error=answer.get("error"), duration_ms=duration)

    def _timed_out(self, request_id: str, started: float) -> Outcome:
        self.stop()
        message = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} Task timed out after {self.spec.timeout:.2f} seconds"
        with self.log.open("a") as sink:
            sink.write(message + "\n")
        error = {"errorType": "Sandbox.Timedout", "errorMessage": message, "stackTrace": []}
        return Outcome(ok=False, error=error, duration_ms=(time.monotonic() - started) * 1000, timed_out=True)

    def _crashed(self, request_id: str, started: float) -> Outcome:
        code = self.process.wait() if self.process is not None else None
        self.process = None
        error = {"errorType": "Runtime.ExitError",
                 "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}",
                 "stackTrace": []}
        return Outcome(ok=False, error=error, duration_ms=(time.monotonic() - started) * 1000)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


# --------------------------------------------------------------------------- emulator I/O


@dataclass
class Emulator:
    """boto3 clients bound to the emulator, created lazily."""

    endpoint: str
    region: str = state.REGION
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _role_credentials: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(
                    service, endpoint_url=self.endpoint, region_name=self.region,
                    aws_access_key_id="testing", aws_secret_access_key="testing",
                    config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 3},
                                                  max_pool_connections=64, read_timeout=POLL_WAIT_SECONDS + 30),
                )
            return self._clients[service]

    def function(self, name: str) -> FunctionSpec:
        lam = self.client("lambda")
        answer = lam.get_function(FunctionName=name)
        config = answer["Configuration"]
        layers = []
        for ref in config.get("Layers", []):
            arn = ref["Arn"]
            layer_name, version = arn.split(":")[6], int(arn.split(":")[7])
            content = lam.get_layer_version(LayerName=layer_name, VersionNumber=version)["Content"]
            layers.append(Layer(arn, content["CodeSha256"], content["Location"]))
        reserved = answer.get("Concurrency", {}).get("ReservedConcurrentExecutions")
        return FunctionSpec(
            name=config["FunctionName"], arn=config["FunctionArn"], handler=config["Handler"],
            timeout=int(config.get("Timeout", 3)), memory=int(config.get("MemorySize", 128)),
            environment=tuple(sorted(config.get("Environment", {}).get("Variables", {}).items())),
            code_sha=config["CodeSha256"], code_location=answer["Code"]["Location"], layers=tuple(layers),
            reserved_concurrency=reserved, architectures=tuple(config.get("Architectures", ["x86_64"])),
            ephemeral_mb=int(config.get("EphemeralStorage", {}).get("Size", 512)),
            credentials=self.role_credentials(config["Role"], config["FunctionName"]),
        )

    def role_credentials(self, role_arn: str, session: str) -> tuple[tuple[str, str], ...]:
        """Temporary credentials of ``role_arn`` from the emulator's STS, as Lambda gives a function its
        execution role's: once per role (moto's never expire), so a function's spec stays the same."""
        with self._lock:
            known = self._role_credentials.get(role_arn)
        if known is None:
            answer = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session[:64])["Credentials"]
            known = (("AWS_ACCESS_KEY_ID", answer["AccessKeyId"]), ("AWS_SECRET_ACCESS_KEY", answer["SecretAccessKey"]),
                     ("AWS_SESSION_TOKEN", answer["SessionToken"]))
            with self._lock:
                known = self._role_credentials.setdefault(role_arn, known)
        return known

    def queue_url(self, arn: str) -> str:
        _, _, _, _, account, name = arn.split(":", 5)
        return str(self.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])

    def mappings(self) -> list[MappingSpec]:
        """Every enabled SQS event source mapping, with its function as deployed now."""
        lam = self.client("lambda")
        found: list[MappingSpec] = []
        functions: dict[str, FunctionSpec] = {}
        for page in lam.get_paginator("list_event_source_mappings").paginate():
            for esm in page["EventSourceMappings"]:
                source = esm.get("EventSourceArn", "")
                if not source.startswith("arn:aws:sqs:") or esm.get("State", "Enabled") not in ("Enabled", "Creating", "Updating"):
                    continue
                name = esm["FunctionArn"].split(":")[6]
                spec = functions.get(name) or functions.setdefault(name, self.function(name))
                scaling = (esm.get("ScalingConfig") or {}).get("MaximumConcurrency")
                concurrency = int(scaling or spec.reserved_concurrency or DEFAULT_CONCURRENCY)
                found.append(MappingSpec(
                    uuid=esm["UUID"], queue_arn=source, queue_url=self.queue_url(source),
                    batch_size=int(esm.get("BatchSize") or 10), concurrency=max(1, concurrency),
                    report_batch_item_failures="ReportBatchItemFailures" in (esm.get("FunctionResponseTypes") or []),
                    function=spec,
                ))
        return found


    def schedules(self, report: Callable[[str], None], period_override: float | None = None) -> list[ScheduleSpec]:
        """Every enabled rate-scheduled rule's function targets, with each function as deployed now."""
        events = self.client("events")
        found: list[ScheduleSpec] = []
        for page in events.get_paginator("list_rules").paginate():
            for rule in page["Rules"]:
                expression = rule.get("ScheduleExpression")
                if not expression or rule.get("State", "ENABLED") != "ENABLED":
                    continue
                period = rate_seconds(expression)
                if period is None:
                    report(f"rule {rule['Name']}: schedule {expression!r} is not run locally (rate(...) only)")
                    continue
                for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                    if ":lambda:" not in target["Arn"]:
                        continue
                    found.append(ScheduleSpec(
                        rule_name=rule["Name"], rule_arn=rule["Arn"], expression=expression,
                        period=period_override or period, target_id=target["Id"],
                        function=self.function(target["Arn"].split(":")[6])))
        return found


# --------------------------------------------------------------------------- pollers


@dataclass
class Stats:
    """Counters for status lines and benchmarks."""

    invocations: int = 0
    failures: int = 0
    messages: int = 0
    deleted: int = 0
    overhead_ms: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: float) -> None:
        with self._lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)


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
        self._stop.set()
        if wait:
            for thread in self._threads:
                thread.join(timeout=self.poll_wait + self.mapping.function.timeout + 5)
        for worker in self._workers:
            worker.stop()

    def _tmp_dir(self) -> Path | None:
        """This slot's /tmp mount point, or None (reported once) where mounts are not permitted."""
        root = self.log.parent.parent / "tmp"
        why_not = tmp_budget_available(root / ".probe")
        if why_not is not None:
            if not _TMP_BUDGET.get("reported"):
                _TMP_BUDGET["reported"] = "yes"
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


class SchedulePoller:
    """Runs one scheduled function target every ``period`` seconds on its own warm worker."""

    def __init__(self, schedule: ScheduleSpec, emulator: Emulator, cache: CodeCache, log_dir: Path,
                 report: Callable[[str], None], stats: Stats) -> None:
        self.schedule = schedule
        self.emulator = emulator
        self.cache = cache
        self.log = log_dir / f"{schedule.function.name}.log"
        self.report = report
        self.stats = stats
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"schedule-{schedule.rule_name}", daemon=True)
        self._worker: Worker | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        if wait:
            self._thread.join(timeout=self.schedule.function.timeout + 5)
        if self._worker is not None:
            self._worker.stop()

    def _loop(self) -> None:
        spec = self.schedule.function
        while not self._stop.wait(self.schedule.period):
            try:
                if self._worker is None:
                    task_root, opt = self.cache.layout(spec)
                    self._worker = Worker(spec, task_root, opt, self.emulator.endpoint, self.emulator.region, self.log)
                outcome = self._worker.invoke(scheduled_event(self.schedule.rule_arn, self.emulator.region))
                self.runs += 1
                self.stats.add(invocations=1, failures=0 if outcome.ok else 1)
                if not outcome.ok and outcome.error is not None:
                    self.report(f"{spec.name}: scheduled run failed ({self.schedule.rule_name}): "
                                f"{json.dumps(outcome.error)}")
            except Exception as error:  # noqa: BLE001 - the schedule must outlive any one failure
                if not self._stop.is_set():
                    self.report(f"{spec.name}: schedule error: {type(error).__name__}: {error}")


class Runner:
    """Keeps one :class:`MappingPoller` per event source mapping and one
    :class:`SchedulePoller` per scheduled function target in the emulator."""

    def __init__(self, endpoint: str, region: str = state.REGION, cache_dir: Path = CODE_DIR,
                 log_dir: Path = state.LOG_DIR, verbose: bool = False, poll_wait: int = POLL_WAIT_SECONDS,
                 schedule_seconds: float | None = None) -> None:
        self.emulator = Emulator(endpoint, region)
        self.poll_wait = poll_wait
        self.schedule_seconds = schedule_seconds
        self.schedules: dict[str, SchedulePoller] = {}
        self.cache = CodeCache(cache_dir)
        self.log_dir = log_dir
        self.verbose = verbose
        self.stats = Stats()
        self.pollers: dict[str, MappingPoller] = {}
        self._stop = threading.Event()
        self._log_lock = threading.Lock()

    def report(self, line: str) -> None:
        """A runner log line: to ``runner.log``, and to stderr when verbose."""
        stamped = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}"
        with self._log_lock:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with (self.log_dir / "runner.log").open("a") as sink:
                sink.write(stamped + "\n")
            if self.verbose:
                sys.stderr.write(stamped + "\n")

    def refresh(self) -> None:
        """Start pollers for new mappings, restart changed ones, stop removed ones."""
        wanted = {m.uuid: m for m in self.emulator.mappings()}
        for key in list(self.pollers):
            if key not in wanted or wanted[key] != self.pollers[key].mapping:
                poller = self.pollers.pop(key)
                poller.stop(wait=False)
                self.report(f"stopped {poller.mapping.function.name} on {poller.mapping.queue_arn} (changed or removed)")
        for key, mapping in wanted.items():
            if key not in self.pollers:
                poller = MappingPoller(mapping, self.emulator, self.cache, self.log_dir, self.report, self.stats, self.poll_wait)
                self.pollers[key] = poller
                poller.start()
                self.report(f"polling {mapping.queue_arn} -> {mapping.function.name} (batch {mapping.batch_size}, "
                            f"concurrency {mapping.concurrency}, partial batch {mapping.report_batch_item_failures})")
        self.refresh_schedules()

    def refresh_schedules(self) -> None:
        """Start a poller for each new scheduled target, restart changed ones, stop removed ones."""
        wanted = {s.key: s for s in self.emulator.schedules(self.report, self.schedule_seconds)}
        for key in list(self.schedules):
            if key not in wanted or wanted[key] != self.schedules[key].schedule:
                poller = self.schedules.pop(key)
                poller.stop(wait=False)
                self.report(f"stopped schedule {poller.schedule.rule_name} -> {poller.schedule.function.name}")
        for key, schedule in wanted.items():
            if key not in self.schedules:
                poller = SchedulePoller(schedule, self.emulator, self.cache, self.log_dir, self.report, self.stats)
                self.schedules[key] = poller
                poller.start()
                self.report(f"scheduled {schedule.rule_name} ({schedule.expression}, every {schedule.period:g} s) "
                            f"-> {schedule.function.name}")

    def run(self, refresh_seconds: float = REFRESH_SECONDS) -> None:
        """Refresh until :meth:`stop`."""
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as error:  # noqa: BLE001 - an emulator hiccup must not end the runner
                self.report(f"refresh failed: {type(error).__name__}: {error}")
            self._stop.wait(refresh_seconds)
        self._stop_all()

    def start(self, refresh_seconds: float = REFRESH_SECONDS) -> threading.Thread:
        """Run in a background thread (tests, benchmarks)."""
        thread = threading.Thread(target=self.run, args=(refresh_seconds,), name="runner", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop now (tests, benchmarks): every poller at once, then wait for them."""
        self._stop.set()
        self._stop_all()

    def _stop_all(self) -> None:
        """Every poller at once, then wait for them."""
        pollers: list[MappingPoller | SchedulePoller] = [*self.pollers.values(), *self.schedules.values()]
        for poller in pollers:
            poller.stop(wait=False)
        for poller in pollers:
            poller.stop(wait=True)


# --------------------------------------------------------------------------- daemon


RUNNER_MODULE = "thingpress_cli.local.runner"


def start_daemon(endpoint: str, path: Path = state.STATE_FILE, verbose: bool = False) -> int:
    """Start the runner detached (recorded in the state file); reuse a running one."""
    recorded = state.load(path).get("runner") or {}
    if state.pid_alive(recorded.get("pid"), RUNNER_MODULE) and recorded.get("endpoint") == endpoint:
        return int(recorded["pid"])
    stop_daemon(path)
    log_dir = path.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", RUNNER_MODULE, "--endpoint", endpoint, "--log-dir", str(log_dir),
               "--cache-dir", str(path.parent / "code")]
    if verbose:
        command.append("--verbose")
    with (log_dir / "runner.out").open("ab") as sink:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    state.update("runner", {"pid": process.pid, "endpoint": endpoint}, path)
    return process.pid


def stop_daemon(path: Path = state.STATE_FILE) -> bool:
    """Stop the recorded runner and its workers; True if one was running."""
    from thingpress_cli.local.emulator import terminate

    pid = (state.load(path).get("runner") or {}).get("pid")
    alive = state.pid_alive(pid, RUNNER_MODULE)
    if alive:
        terminate(pid, timeout=POLL_WAIT_SECONDS + 5)
    state.update("runner", None, path)
    return alive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {RUNNER_MODULE}", description="Run deployed Lambdas on their SQS mappings.")
    parser.add_argument("--endpoint", default=None, help="emulator URL (default: from build/local/state.json)")
    parser.add_argument("--log-dir", type=Path, default=state.LOG_DIR)
    parser.add_argument("--cache-dir", type=Path, default=CODE_DIR)
    parser.add_argument("--verbose", action="store_true", help="also print errors and tracebacks to stderr")
    parser.add_argument("--schedule-seconds", type=float, default=None,
                        help=f"run every scheduled function this often (default: ${SCHEDULE_SECONDS_SETTING}, "
                             "else each rule's own rate)")
    args = parser.parse_args(argv)
    endpoint = args.endpoint or state.endpoint()
    if not endpoint:
        raise SystemExit("no emulator endpoint: run `thingpress local up` first or pass --endpoint")
    schedule_seconds = args.schedule_seconds or float(os.environ.get(SCHEDULE_SECONDS_SETTING) or 0) or None
    runner = Runner(endpoint, cache_dir=args.cache_dir, log_dir=args.log_dir, verbose=args.verbose,
                    schedule_seconds=schedule_seconds)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    runner.report(f"runner started against {endpoint}")
    with contextlib.suppress(KeyboardInterrupt):
        runner.run()
    runner.report("runner stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
