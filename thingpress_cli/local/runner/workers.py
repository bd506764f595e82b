"""Workers: warm function processes, each a Lambda execution environment.

* **A clean interpreter.** Each worker is the base Python (not the venv) run with
  ``-S -P`` and ``PYTHONPATH=<task root>:<opt>/python`` in an environment holding
  only the function's deployed variables plus what Lambda sets (region, function
  name, memory, handler, task root), the emulator endpoint and, as on Lambda, the
  temporary credentials of the function's execution role (``AssumeRole`` on the
  emulator: :mod:`thingpress_cli.local.emulator.s3_rules` knows the caller's role by them). See
  :mod:`thingpress_cli.local.bootstrap`.
* **Warm workers.** One process per concurrent slot, reused across invocations;
  re-spawned after a crash or a timeout (the worker is killed at the function's
  timeout and the whole batch counts as failed).
* **/tmp as Lambda sizes it.** Each worker runs in its own mount namespace with a
  tmpfs of the function's ``EphemeralStorage`` size (512 MB by default) as its
  ``TMPDIR``, so a function that overflows its /tmp on AWS overflows it here
  (``ENOSPC``). Where mounts are not permitted (not root), the runner says so once
  in its log and runs without the limit.
* **Errors as Lambda reports them.** ``errorType``/``errorMessage``/``stackTrace``
  go to ``build/local/logs/<function>.log`` (where the function's own output goes
  too) and, in verbose mode, to stderr.

:func:`worker_pids` finds a function's workers by their Lambda environment
(``psutil``), for fault injection.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from thingpress_cli.local import recorder, state, supervision
from thingpress_cli.local.runner.model import FunctionSpec, Outcome

BOOTSTRAP = Path(__file__).resolve().parents[1] / "bootstrap.py"
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
    from thingpress_cli.local.emulator import process as emulator

    if endpoint is None:
        current = emulator.running()
        if current is None:
            return []
        endpoint = current.url
    return supervision.pids_with_environment({"AWS_LAMBDA_FUNCTION_NAME": function_name, "AWS_ENDPOINT_URL": endpoint})


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


def tmp_budget_command(size_mb: int, folder: Path) -> list[str]:
    """A prefix that runs the worker in a private mount namespace with a ``size_mb`` tmpfs on ``folder``.

    The namespace ends with the process, and the tmpfs with it: each execution environment
    starts with an empty /tmp of the function's size, as on Lambda.
    """
    script = 'size="$1"; dir="$2"; shift 2; mount -t tmpfs -o "size=${size}m,mode=1777" tmpfs "$dir" && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(size_mb), str(folder)]


TMP_BUDGET: dict[str, str | None] = {}


def tmp_budget_available(probe_dir: Path) -> str | None:
    """None when workers can get their own sized tmpfs; else why not (checked once)."""
    if "answer" not in TMP_BUDGET:
        probe_dir.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(tmp_budget_command(1, probe_dir) + ["true"], capture_output=True, text=True,
                                  timeout=10, check=False)
            TMP_BUDGET["answer"] = None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")
        except OSError as error:  # no unshare on this machine
            TMP_BUDGET["answer"] = str(error)
    return TMP_BUDGET["answer"]


def report_line(request_id: str, duration_ms: float, memory_mb: int) -> str:
    """Lambda's ``REPORT`` line for one invocation (what ``thingpress_cli.local.runner.workers.billed`` reads)."""
    return (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {memory_mb} MB")


#: a REPORT line's billed duration and memory size
REPORT = re.compile(r"^REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: (\d+) ms\tMemory Size: (\d+) MB")


def billed(log_lines: Iterable[str]) -> tuple[int, float]:
    """(invocations, GB-seconds) of the REPORT lines among ``log_lines``: billed ms x memory, as Lambda bills."""
    invocations, gb_seconds = 0, 0.0
    for line in log_lines:
        found = REPORT.match(line)
        if found:
            invocations += 1
            gb_seconds += int(found.group(1)) / 1000 * int(found.group(2)) / 1024
    return invocations, gb_seconds


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
        """Run one invocation; kill the worker at the function's timeout. Its ``REPORT`` line goes to the
        log as Lambda writes it (https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html):
        duration, billed duration (rounded up to the millisecond, as Lambda bills) and memory size."""
        request_id = request_id or str(uuid.uuid4())
        outcome = self._invoke(event, request_id)
        with self.log.open("a") as sink:
            sink.write(report_line(request_id, outcome.duration_ms, self.spec.memory) + "\n")
        return outcome

    def _invoke(self, event: dict[str, Any], request_id: str) -> Outcome:
        if self.process is None or self.process.poll() is not None:
            self.process = self._spawn()
            self._buffer = b""
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
        process, self.process = self.process, None  # once, when the slot and a shutdown both stop it
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
