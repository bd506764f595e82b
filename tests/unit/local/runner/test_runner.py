"""The Lambda runner end to end against a real emulator process.

Each test deploys, with boto3, a queue (with a DLQ), a tiny function zip and a
layer zip built here, and an event source mapping; then runs a Runner and checks
what Lambda would do: batch size, partial batch responses, errors reported with
their traceback, timeouts, maximum concurrency, a clean interpreter.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from factories import zip_of

from thingpress_cli.local.runner.cloud import Emulator
from thingpress_cli.local.runner.model import MappingSpec, Outcome
from thingpress_cli.local.runner.sqs_source import failed_message_ids, sqs_event
from thingpress_cli.local.runner.supervisor import Runner

#: The layer: Lambda layout python/<package>.
LAYER_MODULE = '''
import json, os, time

def record(kind, **data):
    with open(os.environ["RECORD_FILE"], "a") as sink:
        sink.write(json.dumps({"kind": kind, "pid": os.getpid(), "t": time.time(), **data}) + "\\n")
'''

#: The function: behaviour chosen by each message body.
HANDLER = '''
import os, sys, time
import tplayer

def handler(event, context):
    bodies = [r["body"] for r in event["Records"]]
    tplayer.record("start", bodies=bodies, size=len(bodies), path=sys.path, site="site" in sys.modules,
                   remaining=context.get_remaining_time_in_millis(), arn=context.invoked_function_arn,
                   name=context.function_name, memory=context.memory_limit_in_mb,
                   env=sorted(os.environ), endpoint=os.environ.get("AWS_ENDPOINT_URL"), greeting=os.environ.get("GREETING"), access_key=os.environ.get("AWS_ACCESS_KEY_ID"))
    if "raise" in bodies:
        raise ValueError("bad certificate in batch")
    if "sleep" in bodies:
        time.sleep(float(os.environ.get("SLEEP", "30")))
    if "nap" in bodies:
        time.sleep(0.4)
    if "hold" in bodies:  # paused until the test releases it
        while not os.path.exists(os.environ["RELEASE_FILE"]):
            time.sleep(0.02)
    tplayer.record("end")
    failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "fail"]
    return {"batchItemFailures": failures}
'''

BROKEN = "import not_there\n\ndef handler(event, context):\n    return None\n"




@dataclass
class Deployment:
    name: str
    queue_url: str
    dlq_url: str
    records: Path

    def starts(self) -> list[dict[str, Any]]:
        if not self.records.exists():
            return []
        return [r for r in map(json.loads, self.records.read_text().splitlines()) if r["kind"] == "start"]


@pytest.fixture
def deploy(aws, tmp_path) -> Iterator[Callable[..., Deployment]]:
    sqs, lam, iam = aws("sqs"), aws("lambda"), aws("iam")
    role = iam.create_role(RoleName=f"runner-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    layer = lam.publish_layer_version(LayerName=f"tplayer-{uuid.uuid4().hex[:8]}",
                                      Content={"ZipFile": zip_of({"python/tplayer.py": LAYER_MODULE})},
                                      CompatibleRuntimes=["python3.11"])["LayerVersionArn"]
    mappings: list[str] = []

    def make(*, code: str = HANDLER, module: str = "fn", batch_size: int = 10, timeout: int = 10,
             partial: bool = True, max_concurrency: int | None = None, reserved: int | None = None,
             visibility: int = 1, max_receive: int = 1, env: dict[str, str] | None = None,
             ephemeral: int | None = None) -> Deployment:
        name = f"fn-{uuid.uuid4().hex[:8]}"
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(QueueName=name, Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive}),
        })["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        records = tmp_path / f"{name}.jsonl"
        lam.create_function(
            FunctionName=name, Runtime="python3.11", Role=role, Handler=f"{module}.handler", Timeout=timeout,
            MemorySize=256, Code={"ZipFile": zip_of({f"{module}.py": code})}, Layers=[layer],
            Environment={"Variables": {"RECORD_FILE": str(records), "GREETING": "hello", **(env or {})}},
            **({"EphemeralStorage": {"Size": ephemeral}} if ephemeral else {}),
        )
        if reserved is not None:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
        options: dict[str, Any] = {"FunctionResponseTypes": ["ReportBatchItemFailures"]} if partial else {}
        if max_concurrency is not None:
            options["ScalingConfig"] = {"MaximumConcurrency": max_concurrency}
        mappings.append(lam.create_event_source_mapping(
            EventSourceArn=queue_arn, FunctionName=name, BatchSize=batch_size, **options)["UUID"])
        return Deployment(name, queue_url, dlq_url, records)

    yield make
    for mapping in mappings:
        lam.delete_event_source_mapping(UUID=mapping)


@pytest.fixture(scope="module")
def closing() -> Iterator[list[threading.Thread]]:
    """Runners closing in the background: a closing runner waits out its pollers' long polls
    (``poll_wait``, 1 s here), which need not hold up the next test (its own queues and
    functions); every one has closed by the end of the module."""
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(timeout=60)
    assert not [thread.name for thread in threads if thread.is_alive()], "a runner did not close"


@pytest.fixture
def run(emulator_url, tmp_path, closing) -> Iterator[Callable[[], Runner]]:
    runners: list[Runner] = []

    def start() -> Runner:
        runner = Runner(emulator_url, cache_dir=tmp_path / "code", log_dir=tmp_path / "logs", poll_wait=1)
        runner.start(refresh_seconds=0.2)
        runners.append(runner)
        return runner

    yield start
    for i, runner in enumerate(runners):
        runner.stop()  # nothing new starts; close() then waits for what runs
        thread = threading.Thread(target=runner.close, name=f"close {tmp_path.name} {i}", daemon=True)
        thread.start()
        closing.append(thread)


def send(aws, deployment: Deployment, *bodies: str) -> None:
    sqs = aws("sqs")
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(QueueUrl=deployment.queue_url, Entries=[
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start:start + 10])])


def bodies_in(aws, url: str) -> list[str]:
    attributes = aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    if int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 0:
        return []
    found = aws("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return sorted(m["Body"] for m in found.get("Messages", []))


def eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


# ------------------------------------------------------------------ pure rules


def test_failed_message_ids_follow_lambda_rules():
    ids = ["a", "b", "c"]
    assert failed_message_ids(Outcome(ok=False), ids, True) == {"a", "b", "c"}
    assert failed_message_ids(Outcome(ok=True, result={"batchItemFailures": [{"itemIdentifier": "b"}]}), ids, True) == {"b"}
    assert failed_message_ids(Outcome(ok=True, result={"batchItemFailures": []}), ids, True) == set()
    assert failed_message_ids(Outcome(ok=True, result=None), ids, True) == set()
    # An identifier not in the batch (or empty) fails the whole batch, as Lambda does.
    assert failed_message_ids(Outcome(ok=True, result={"batchItemFailures": [{"itemIdentifier": "zz"}]}), ids, True) == set(ids)
    assert failed_message_ids(Outcome(ok=True, result={"batchItemFailures": [{"itemIdentifier": ""}]}), ids, True) == set(ids)
    # Without ReportBatchItemFailures the answer is ignored: success deletes everything.
    assert failed_message_ids(Outcome(ok=True, result={"batchItemFailures": [{"itemIdentifier": "b"}]}), ids, False) == set()


def test_sqs_event_has_lambda_shape():
    message = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": "x", "MD5OfBody": "md5",
               "Attributes": {"ApproximateReceiveCount": "1"},
               "MessageAttributes": {"vendor": {"DataType": "String", "StringValue": "espressif"}}}
    record = sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")["Records"][0]
    assert record["messageId"] == "m1" and record["receiptHandle"] == "r1" and record["body"] == "x"
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(":q")
    assert record["messageAttributes"]["vendor"]["stringValue"] == "espressif"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"


# ------------------------------------------------------------------ the emulator as read


def test_each_refresh_reads_the_functions_again_and_a_layer_version_or_queue_url_once(aws, deploy, emulator_url):
    """The runner reads every mapping's function on each refresh (a changed setting is picked up), but a
    layer version (immutable) and a queue's URL (its name, account and region) once: the refreshes of an
    idle local deployment were half GetLayerVersion and GetQueueUrl calls."""
    target = deploy()
    cloud = Emulator(emulator_url)
    calls: Counter[str] = Counter()
    for service, operation in (("lambda", "GetFunction"), ("lambda", "GetLayerVersion"), ("sqs", "GetQueueUrl")):
        cloud.client(service).meta.events.register(f"before-call.{service}.{operation}",
                                                   lambda model, **_: calls.update([model.name]))

    def ours() -> MappingSpec:
        (spec,) = [m for m in cloud.mappings() if m.function.name == target.name]
        return spec

    first = ours()
    read_once = {"GetLayerVersion": calls["GetLayerVersion"], "GetQueueUrl": calls["GetQueueUrl"]}
    functions = calls["GetFunction"]
    assert read_once["GetLayerVersion"] >= 1 and read_once["GetQueueUrl"] >= 1 and functions >= 1
    assert ours() == first
    assert {k: calls[k] for k in read_once} == read_once and calls["GetFunction"] == 2 * functions

    lam = aws("lambda")  # a new layer version is a new ARN: read, and the function's spec changes with it
    layer = first.function.layers[0].arn.rsplit(":", 1)[0]
    newer = lam.publish_layer_version(LayerName=layer.rsplit(":", 1)[1],
                                      Content={"ZipFile": zip_of({"python/tplayer.py": LAYER_MODULE})},
                                      CompatibleRuntimes=["python3.11"])["LayerVersionArn"]
    lam.update_function_configuration(FunctionName=target.name, Layers=[newer])
    assert [layer.arn for layer in ours().function.layers] == [newer]
    assert calls["GetLayerVersion"] == read_once["GetLayerVersion"] + 1


# ------------------------------------------------------------------ end to end


def test_batches_partial_failures_and_a_clean_interpreter(aws, deploy, run, tmp_path):
    target = deploy(batch_size=3, max_concurrency=2)
    send(aws, target, "ok-1", "ok-2", "fail", "ok-3", "ok-4", "ok-5", "ok-6")
    run()

    # Only the failed message is left: after its one receive it is redriven to the DLQ.
    assert eventually(lambda: bodies_in(aws, target.dlq_url) == ["fail"]), bodies_in(aws, target.dlq_url)
    assert bodies_in(aws, target.queue_url) == []
    starts = target.starts()
    assert all(s["size"] <= 3 for s in starts)
    assert sorted(b for s in starts for b in s["bodies"]) == ["fail", "ok-1", "ok-2", "ok-3", "ok-4", "ok-5", "ok-6"]

    first = starts[0]
    # Only the zips and the standard library are importable.
    stdlib = Path(sys.base_prefix)
    task_root, opt_python = Path(first["path"][0]), Path(first["path"][1])
    assert (task_root / "fn.py").is_file() and (opt_python / "tplayer.py").is_file()
    assert all(Path(p).is_relative_to(stdlib) for p in first["path"][2:]), first["path"]
    assert not any("site-packages" in p for p in first["path"]) and first["site"] is False
    # Lambda's context and environment.
    assert first["name"] == target.name and first["memory"] == "256"
    assert first["arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{target.name}"
    assert 0 < first["remaining"] <= 10_000
    assert first["greeting"] == "hello" and first["endpoint"].startswith("http://127.0.0.1:")
    assert "VIRTUAL_ENV" not in first["env"] and "PYTEST_CURRENT_TEST" not in first["env"]


def test_a_function_calls_aws_with_its_execution_roles_credentials(aws, deploy, run, emulator_url):
    """As on Lambda, the function's credentials are its role's (AssumeRole): the emulator knows the
    caller's role by them (local/emulator/s3_rules.py answers a missing object by the role's s3:ListBucket)."""
    target = deploy()
    send(aws, target, "ok")
    run()
    assert eventually(target.starts)
    key = target.starts()[0]["access_key"]
    role = aws("lambda").get_function(FunctionName=target.name)["Configuration"]["Role"]

    caller = boto3.client("sts", endpoint_url=emulator_url, region_name="us-east-1", aws_access_key_id=key,
                          aws_secret_access_key="unchecked").get_caller_identity()["Arn"]
    assert key != "testing"
    assert caller == role.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/") + f"/{target.name}"


def test_an_exception_is_reported_with_its_traceback_and_nothing_is_deleted(aws, deploy, run, tmp_path):
    target = deploy(max_receive=2)
    send(aws, target, "raise")
    run()
    assert eventually(lambda: bodies_in(aws, target.dlq_url) == ["raise"])
    assert len(target.starts()) == 2  # received twice (maxReceiveCount 2), failed twice, never deleted
    log = (tmp_path / "logs" / f"{target.name}.log").read_text()
    assert "[ERROR] ValueError: bad certificate in batch" in log
    assert 'fn.py", line 12, in handler' in log
    error = json.loads(next(line for line in log.splitlines() if line.startswith('{"errorType": "ValueError"')))
    assert error["errorMessage"] == "bad certificate in batch"
    # Only the function's frames, as Lambda shows them (no runtime frames).
    assert len(error["stackTrace"]) == 1 and 'raise ValueError("bad certificate in batch")' in error["stackTrace"][0]
    assert "REPORT RequestId:" in log


def test_an_import_error_is_reported_as_lambda_does(aws, deploy, run, tmp_path):
    target = deploy(code=BROKEN, module="broken")
    send(aws, target, "anything")
    run()
    assert eventually(lambda: bodies_in(aws, target.dlq_url) == ["anything"])
    log = (tmp_path / "logs" / f"{target.name}.log").read_text()
    assert "[ERROR] Runtime.ImportModuleError: Unable to import module 'broken': No module named 'not_there'" in log
    runner_log = (tmp_path / "logs" / "runner.log").read_text()
    assert "Runtime.ImportModuleError" in runner_log and target.name in runner_log


def test_a_timeout_kills_the_worker_and_the_message_reappears(aws, deploy, run, tmp_path):
    target = deploy(timeout=1, max_receive=2, env={"SLEEP": "30"})
    send(aws, target, "sleep")
    began = time.monotonic()
    run()
    assert eventually(lambda: bodies_in(aws, target.dlq_url) == ["sleep"])
    assert time.monotonic() - began < 12  # the 30 s sleep was cut at the 1 s timeout, twice
    starts = target.starts()
    assert len(starts) == 2 and starts[0]["pid"] != starts[1]["pid"]  # a fresh worker after the kill
    assert "Task timed out after 1.00 seconds" in (tmp_path / "logs" / f"{target.name}.log").read_text()


def test_maximum_concurrency_is_honoured_and_workers_stay_warm(aws, deploy, run):
    target = deploy(batch_size=1, max_concurrency=2, visibility=30)
    send(aws, target, *["nap"] * 8)
    run()
    assert eventually(lambda: len([r for r in target.records.read_text().splitlines() if '"end"' in r]) == 8
                      if target.records.exists() else False, timeout=20)
    records = [json.loads(line) for line in target.records.read_text().splitlines()]
    events = sorted((r["t"], 1 if r["kind"] == "start" else -1) for r in records)
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 2
    assert len({r["pid"] for r in records}) == 2  # two warm workers served all eight invocations


def test_an_update_of_the_function_lets_the_invocation_in_hand_finish(aws, deploy, run, tmp_path):
    """UpdateFunctionConfiguration does not abort an invocation: "you can't modify the function, but you
    can still invoke it" until the update completes (Lambda API reference, UpdateFunctionConfiguration).
    The runner follows the change at its next refresh; the invocation it has in hand (paused here until
    then) ends on its worker and its message is deleted, not killed and delivered again."""
    release = tmp_path / "release"
    target = deploy(env={"RELEASE_FILE": str(release)})
    send(aws, target, "hold")
    run()
    (started,) = eventually(lambda: target.starts())

    aws("lambda").update_function_configuration(
        FunctionName=target.name, Environment={"Variables": {"RECORD_FILE": str(target.records),
                                                             "RELEASE_FILE": str(release), "GREETING": "again"}})
    runner_log = tmp_path / "logs" / "runner.log"
    # the runner has followed the change: a second poller for the function, on its new setting
    assert eventually(lambda: runner_log.read_text().count(f"-> {target.name} (batch") == 2)
    release.touch()

    assert eventually(lambda: '"end"' in target.records.read_text() and not bodies_in(aws, target.queue_url)), \
        target.records.read_text()
    records = [json.loads(line) for line in target.records.read_text().splitlines()]
    assert [(r["kind"], r["pid"]) for r in records] == [("start", started["pid"]), ("end", started["pid"])]
    assert bodies_in(aws, target.dlq_url) == []
    assert "invocation failed" not in runner_log.read_text()


def test_reserved_concurrency_applies_without_scaling_config(aws, deploy, run, emulator_url):
    target = deploy(batch_size=1, reserved=1, visibility=30)
    send(aws, target, "nap", "nap", "nap")
    runner = run()
    assert eventually(lambda: len(target.starts()) == 3, timeout=20)
    poller = next(p for p in runner.pollers.values() if p.mapping.function.name == target.name)
    assert poller.mapping.concurrency == 1
    assert len({s["pid"] for s in target.starts()}) == 1


TMP_HANDLER = '''
import errno, os, tempfile
import tplayer

def handler(event, context):
    folder = tempfile.gettempdir()
    stat = os.statvfs(folder)
    with tempfile.TemporaryFile() as small:
        small.write(b"x" * 1024 * 1024)
    full = None
    try:
        with tempfile.TemporaryFile() as big:
            chunk = b"x" * (1024 * 1024)
            for _ in range(int(os.environ["FILL_MB"])):
                big.write(chunk)
            big.flush()
    except OSError as error:
        full = errno.errorcode[error.errno]
    tplayer.record("start", bodies=[], size_mb=stat.f_blocks * stat.f_frsize // (1024 * 1024), full=full,
                   folder=folder)
    return {"batchItemFailures": []}
'''


def test_each_worker_gets_the_functions_tmp_size_and_an_overflow_is_enospc(aws, deploy, run):
    target = deploy(code=TMP_HANDLER, ephemeral=600, env={"FILL_MB": "601"})
    send(aws, target, "go")
    run()

    (start,) = eventually(lambda: target.starts(), timeout=60)  # writing 601 MB is slow on a loaded machine
    assert start["size_mb"] == 600  # Lambda's EphemeralStorage.Size, not the host's disk
    assert start["full"] == "ENOSPC"
    assert Path(start["folder"]).name.startswith(f"{target.name}-")  # TMPDIR: this worker's own mount


def test_worker_pids_are_only_those_of_this_emulator():
    """Another checkout's runner has workers of the same function names against its own emulator."""
    import subprocess
    import sys

    from thingpress_cli.local.runner.workers import worker_pids

    def worker(endpoint: str) -> subprocess.Popen:
        env = {"AWS_LAMBDA_FUNCTION_NAME": "thingpress-local-importer", "AWS_ENDPOINT_URL": endpoint}
        process = subprocess.Popen([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"],
                                   env=env, stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline() == "up\n"  # exec'd: /proc/<pid>/environ is the worker's own now
        return process

    ours, theirs = worker("http://127.0.0.1:40001"), worker("http://127.0.0.1:40002")
    try:
        assert worker_pids("thingpress-local-importer", "http://127.0.0.1:40001") == [ours.pid]
        assert worker_pids("thingpress-local-importer", "http://127.0.0.1:40002") == [theirs.pid]
        assert worker_pids("thingpress-local-provider-generated", "http://127.0.0.1:40001") == []
    finally:
        ours.kill()
        theirs.kill()
