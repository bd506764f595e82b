"""The external checks of the synthesized JSON, checkov and ``terraform validate``: subprocesses
(~25 s together, mostly their start-up) run in background threads, started right after synthesis
(``conftest``); their tests (run last in the ``synth`` xdist group) wait for the answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
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


#: the one diagnostic the wrapping itself causes: a child module's ``backend`` block is not read (a root
#: module's is not validated either: ``terraform validate`` reads no backend, as ``init -backend=false``).
WRAPPED_BACKEND = "Backend configuration ignored"


@dataclass
class Validation:
    """One target's part of the ``terraform validate -json`` run: its diagnostics (those whose range names
    its file, and those naming no file), and the run's own output for a message."""

    diagnostics: list[dict[str, Any]]
    output: str

    @property
    def errors(self) -> list[str]:
        return [f"{d['summary']} {d.get('detail', '')}" for d in self.diagnostics if d["severity"] == "error"]


def terraform_validate(synth: Any, work: Path) -> dict[str, Validation]:
    """``terraform validate -json`` of every target in ONE run, offline through the provider mirror config.

    Each target's cdk.tf.json is a child module (``work/<target>/``) of a root that names them all, so the
    aws provider's schema (most of a validate's ~3.8 CPU-s) is loaded once, not once per target; each
    diagnostic names its module's file. validate reads no asset files, so only cdk.tf.json is copied.
    """
    if shutil.which("terraform") is None:
        raise AssertionError("terraform is not on PATH")
    env = toolchain.environment()
    toolchain.warm_plugin_cache(env)  # a deploy may run terraform init at the same time (make test -n 2)
    work.mkdir(parents=True, exist_ok=True)
    for target in TARGETS:
        (work / target).mkdir()
        shutil.copy(synth.stack_dir(target) / "cdk.tf.json", work / target / "cdk.tf.json")
    (work / "main.tf.json").write_text(json.dumps({"module": {t: {"source": f"./{t}"} for t in TARGETS}}))
    init = subprocess.run(["terraform", "init", "-backend=false", "-input=false", "-no-color"], cwd=work, env=env,
                          capture_output=True, text=True, check=False, timeout=600)
    if init.returncode != 0:
        raise AssertionError(init.stdout + init.stderr)
    done = subprocess.run(["terraform", "validate", "-json", "-no-color"], cwd=work, env=env,
                          capture_output=True, text=True, check=False, timeout=300)
    try:
        diagnostics = json.loads(done.stdout)["diagnostics"]
    except (ValueError, KeyError) as error:
        raise AssertionError(f"terraform validate gave no JSON ({error}): {done.stdout}{done.stderr}") from error
    diagnostics = [d for d in diagnostics if not (d["severity"] == "warning" and d["summary"] == WRAPPED_BACKEND)]

    def mine(target: str, diagnostic: dict[str, Any]) -> bool:
        filename = diagnostic.get("range", {}).get("filename")
        return filename is None or filename.startswith(f"{target}/")

    output = done.stdout + done.stderr
    return {t: Validation([d for d in diagnostics if mine(t, d)], output) for t in TARGETS}


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
