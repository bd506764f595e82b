"""The external checks of the synthesized JSON, checkov and ``terraform validate``: subprocesses
(~25 s together, mostly their start-up) run in background threads, started right after synthesis
(``conftest``); their tests (run last in the ``synth`` xdist group) wait for the answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thingpress_cli.core import toolchain

REPO = Path(__file__).resolve().parents[2]
TARGETS = ("aws", "local")
CHECKOV = REPO / "build" / "tools" / "checkov" / "bin" / "checkov"
CHECKOV_CONFIG = REPO / ".checkov.yaml"


def _in_background(name: str, work: Callable[[], Any]) -> Future:
    """``work()`` in a daemon thread; its result (or exception) in the returned future."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as error:  # noqa: BLE001 - handed to the test that waits on it
            future.set_exception(error)

    threading.Thread(target=run, name=f"stacks-{name}", daemon=True).start()
    return future


def checkov_run(synth: Any) -> subprocess.CompletedProcess:
    """One checkov run over every target's cdk.tf.json, framework terraform_json (``terraform``
    would scan nothing and pass), from its own virtualenv (it pins boto3==1.35.49)."""
    files = [str(synth.stack_dir(target) / "cdk.tf.json") for target in TARGETS]
    return subprocess.run(
        [str(CHECKOV), *(arg for f in files for arg in ("-f", f)), "--framework", "terraform_json",
         "--config-file", str(CHECKOV_CONFIG), "-o", "json", "--compact", "--skip-download"],
        capture_output=True, text=True, check=False, timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )


def terraform_validate(synth: Any, work: Path) -> dict[str, subprocess.CompletedProcess]:
    """``terraform validate -json`` of each target, offline through the provider mirror config,
    in ``work`` (one ``init -backend=false`` serves both: same provider; validate reads no asset
    files, so only cdk.tf.json is copied, into one folder per target)."""
    if shutil.which("terraform") is None:
        raise AssertionError("terraform is not on PATH")
    env = toolchain.environment()
    toolchain.warm_plugin_cache(env)  # a deploy may run terraform init at the same time (make test -n 2)
    first = work / TARGETS[0]
    first.mkdir(parents=True)
    shutil.copy(synth.stack_dir(TARGETS[0]) / "cdk.tf.json", first / "cdk.tf.json")
    init = subprocess.run(["terraform", "init", "-backend=false", "-input=false", "-no-color"], cwd=first, env=env,
                          capture_output=True, text=True, check=False, timeout=600)
    if init.returncode != 0:
        raise AssertionError(init.stdout + init.stderr)
    for target in TARGETS[1:]:
        shutil.copytree(first, work / target, symlinks=True)
        shutil.copy(synth.stack_dir(target) / "cdk.tf.json", work / target / "cdk.tf.json")
    return {target: subprocess.run(["terraform", "validate", "-json", "-no-color"], cwd=work / target, env=env,
                                   capture_output=True, text=True, check=False, timeout=300)
            for target in TARGETS}


@dataclass
class ExternalChecks:
    """The external checks' runs, started when first asked for (or right after synthesis)."""

    synth: Any
    work: Path
    _started: dict[str, Future | None] | None = None

    def start(self) -> None:
        if self._started is None:
            checkov = _in_background("checkov", lambda: checkov_run(self.synth)) if CHECKOV.is_file() else None
            self._started = {"checkov": checkov,
                             "validate": _in_background("validate", lambda: terraform_validate(self.synth, self.work))}

    def result(self, name: str) -> Any:
        self.start()
        future = self._started[name]
        return None if future is None else future.result(timeout=900)
