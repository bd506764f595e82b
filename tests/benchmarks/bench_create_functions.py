"""Concurrent ``CreateFunction`` from S3 on a fresh emulator: every call answers, none hangs.

Issue 22, finding 11: one CI deploy hung with a function "Still creating..." for five
minutes (the emulator's channel timeout), then Terraform's retry met "Function already
exist": the first CreateFunction had been applied and its answer never arrived. A deploy
creates its six functions from S3 at once (Terraform's parallelism); this benchmark does
that ``--rounds`` times over on an emulator of its own (its own port, state and logs),
with no SDK retry and a 60 s read timeout, so a hang is an error here and not a wait.
Then a lost answer, as the deploy met it: ``terraform apply`` of a stack's functions (the
Terraform AWS provider, the Go SDK) through :class:`reset_proxy.ResetProxy`, which resets the
connection of the first ``CreateFunction`` after the emulator applied it, with
``thingpress local up``'s :class:`~thingpress_cli.local.lost_creates.Watch` running. The SDK sends
the call again, the emulator refuses it as existing, the watch deletes the function and the
provider's next retry creates it: the apply succeeds in seconds (without the watch it fails after
five minutes).
It prints the figures as JSON and exits 1 when a goal is missed (``goals.CREATE_FUNCTIONS``:
the slowest call at most 10 s, no error; the lost answer's apply succeeds within 60 s, one function
deleted); the emulator's request log of the run (``requests.log``: every request with its time, and
any still running after 10 s) is kept in the printed ``log_dir``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import boto3
import goals
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from reset_proxy import ResetProxy

from thingpress_cli.core import toolchain
from thingpress_cli.local import deployments, lost_creates
from thingpress_cli.local.emulator import process as emulator

ROUNDS, FUNCTIONS = 10, 6
#: about the size of a deployed function zip plus its share of the layer's upload
CODE_BYTES = 2 * 1024 * 1024
ROLE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def _code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return None\n")
        archive.writestr("padding.bin", os.urandom(CODE_BYTES))
    return buffer.getvalue()


def measure(rounds: int = ROUNDS, functions: int = FUNCTIONS) -> dict[str, Any]:
    """Create ``functions`` functions at once, ``rounds`` times, on a fresh emulator; the figures."""
    work = Path(tempfile.mkdtemp(prefix="thingpress-create-functions-"))
    state_file = work / "state.json"
    emu = emulator.start(path=state_file, log=work / "logs" / "emulator.log")
    try:
        config = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60, connect_timeout=10,
                        max_pool_connections=functions)
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name="us-east-1")
        s3, lam, iam = (session.client(name, endpoint_url=emu.url, config=config) for name in ("s3", "lambda", "iam"))
        s3.create_bucket(Bucket="bench-code")
        s3.put_object(Bucket="bench-code", Key="function.zip", Body=_code())
        role = iam.create_role(RoleName="bench-function", AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]
        seconds: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def create(name: str) -> None:
            started = time.perf_counter()
            try:
                lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="handler.lambda_handler",
                                    Code={"S3Bucket": "bench-code", "S3Key": "function.zip"}, Timeout=30, MemorySize=256)
            except (BotoCoreError, ClientError) as error:  # a refusal, a timeout (a hang), a lost connection
                with lock:
                    errors.append(f"{name}: {type(error).__name__}: {error}")
            finally:
                with lock:
                    seconds.append(time.perf_counter() - started)

        began = time.perf_counter()
        for round_ in range(rounds):
            threads = [threading.Thread(target=create, args=(f"bench-{round_}-{i}",)) for i in range(functions)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        total = time.perf_counter() - began
        lost = lost_answer(emu.url, role, work)
    finally:
        emulator.stop(path=state_file)
    for line in errors:
        print(line, file=sys.stderr)
    return {
        **lost,
        "create_function_calls": len(seconds),
        "create_function_errors": len(errors),
        "create_function_max_seconds": round(max(seconds), 2),
        "create_function_median_seconds": round(statistics.median(seconds), 3),
        "create_function_total_seconds": round(total, 1),
        "log_dir": str(work / "logs"),
    }


def lost_answer(url: str, role: str, work: Path) -> dict[str, Any]:
    """``terraform apply`` of a stack's functions with the first create's answer lost; its figures."""
    functions = deployments.stack_functions("benchlost")
    root = work / "lost-answer"
    root.mkdir()
    with ResetProxy(int(url.rsplit(":", 1)[1])) as proxy:
        (root / "main.tf.json").write_text(json.dumps({
            "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws"}}},
            "provider": {"aws": {"access_key": "testing", "secret_key": "testing", "region": "us-east-1",
                                 "s3_use_path_style": True, "skip_credentials_validation": True,
                                 "skip_metadata_api_check": "true", "skip_requesting_account_id": True,
                                 "endpoints": [{"lambda": proxy.url}]}},
            "resource": {"aws_lambda_function": {f"f{i}": {
                "function_name": name, "role": role, "handler": "handler.lambda_handler", "runtime": "python3.11",
                "s3_bucket": "bench-code", "s3_key": "function.zip", "timeout": 30, "memory_size": 256}
                for i, name in enumerate(functions)}}}))
        env = toolchain.environment()
        subprocess.run(["terraform", "init", "-input=false"], cwd=root, env=env, check=True, capture_output=True)
        warnings: list[str] = []
        began = time.perf_counter()
        with lost_creates.Watch(url, functions, warnings.append) as watch:
            apply = subprocess.run(["terraform", "apply", "-auto-approve", "-input=false", "-no-color"], cwd=root,
                                   env=env, capture_output=True, text=True, timeout=600, check=False)
        seconds = time.perf_counter() - began
    (root / "apply.log").write_text(apply.stdout + apply.stderr)
    for line in warnings:
        print(f"lost answer: {line}", file=sys.stderr)
    if apply.returncode:
        print(f"lost answer: terraform apply failed (exit {apply.returncode}): {root / 'apply.log'}", file=sys.stderr)
    return {
        "lost_answer_resets": proxy.resets,
        "lost_answer_functions_deleted": len(watch.deleted),
        "lost_answer_apply_failed": int(apply.returncode != 0),
        "lost_answer_apply_seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--functions", type=int, default=FUNCTIONS)
    parser.add_argument("--figures", type=Path, default=None, help="also write the figures (JSON) to this file")
    args = parser.parse_args(argv)
    figures = measure(args.rounds, args.functions)
    print(json.dumps(figures, sort_keys=True))
    if args.figures is not None:
        args.figures.write_text(json.dumps(figures, sort_keys=True))
    return goals.exit_status(figures, goals.CREATE_FUNCTIONS)


if __name__ == "__main__":
    sys.exit(main())
