"""Fairness and backpressure on the local deployment, at the shipped defaults (issues 13 and 23).

Against a running local deployment (``thingpress local up``), in one run, with the
deployed settings untouched (the default window ``THINGPRESS_IMPORT_WINDOW_MINUTES``,
1 minute, and the default budget ``THINGPRESS_IOT_TPS``, AWS's 10
RegisterCertificateWithoutCA per second; a deployment set otherwise is refused, naming
the setting) and the emulator in quota mode at AWS's default IoT rates:

1. **alone** -- a 40-certificate generated manifest, uploaded to an idle pipeline:
   seconds from upload until its summary is COMPLETE (``fairness_small_alone_seconds``);
2. **behind** -- a 100,000-certificate manifest (same vendor), and 5 s after it was
   uploaded another 40-certificate one: seconds from the small one's upload until it is
   COMPLETE (``fairness_default_seconds``, goal at most 90), the window it ran with
   (``fairness_default_window_minutes``), and the importer's rate over the same seconds
   against the budget (``importer_saturation``, goal at least 0.95: the small manifest's
   lane costs the large one nothing);
3. **backlog** -- the import queue's depth (visible + in flight: every certificate queued
   and not finished) sampled every 0.2 s through phases 1 and 2: the largest seen over the
   window (``backlog_over_window``, goal at most 1.1).

Then the large manifest is stopped (its object version deleted: the provider's next
continuation finds it gone and refuses the manifest) and what it had queued is drained
at an unlimited budget, so the deployment is idle again; every setting is put back.

``python tests/benchmarks/bench_fairness.py`` prints the figures as JSON and exits 1
when they miss a goal (``goals.FAIRNESS``), naming it; ``bench_scale.py`` calls
:func:`measure` and judges the same goals.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import goals

from stacks.naming import DEFAULT_ENV
from thingpress import backpressure
from thingpress.audit.states import COMPLETE, REFUSED, STALLED
from thingpress.audit.table import AuditTable
from thingpress.settings import DEFAULT_IOT_TPS, IOT_TPS, FunctionSettings
from thingpress_cli.core.certificates import write_manifest
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.local.emulator import process as emulator

BIG, SMALL = 100_000, 40
HEAD_START_SECONDS = 5.0
SAMPLE_SECONDS = 0.2
UNLIMITED = {api: 100_000.0 for api in DEFAULT_IOT_TPS}
#: the outcome counters of a summary (certificates finished).
FINISHED = ("imported", "already_present", "failed", "rejected")


class DepthSampler(threading.Thread):
    """Samples the import queue's depth until stopped; keeps the largest."""

    def __init__(self, deployment: Deployment):
        super().__init__(daemon=True)
        self.deployment = deployment
        self.deepest = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.deepest = max(self.deepest, self.deployment.import_backlog())
            self.samples += 1
            self._halt.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def configure(deployment: Deployment, function: str, values: dict[str, str]) -> dict[str, str]:
    """Set environment variables of a deployed function; return the whole environment as it was."""
    lam = deployment.client("lambda")
    env = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    wanted = {**env, **values}
    if wanted != env:
        lam.update_function_configuration(FunctionName=function, Environment={"Variables": wanted})
    return env


def restore(deployment: Deployment, function: str, env: dict[str, str]) -> None:
    deployment.client("lambda").update_function_configuration(FunctionName=function, Environment={"Variables": env})


def manifest(workdir: Path, name: str, count: int) -> Path:
    path = workdir / f"{name}-{uuid.uuid4().hex[:8]}.txt"
    write_manifest(path, count, prefix=f"Fair-{name}-{uuid.uuid4().hex[:6]}-")
    return path


def wait_complete(deployment: Deployment, mid: str, timeout: float) -> float:
    """Poll until the manifest is COMPLETE; the monotonic time it was seen so."""
    table = deployment.audit_table()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = table.get_summary(mid) or {}
        if row.get("state") == COMPLETE:
            return time.monotonic()
        if row.get("state") in (REFUSED, STALLED):
            raise RuntimeError(f"manifest {mid} ended {row['state']}: {row.get('reason')}")
        time.sleep(0.1)
    raise RuntimeError(f"manifest {mid} not COMPLETE after {timeout:.0f} s")


def wait_idle(deployment: Deployment, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while deployment.import_backlog():
        if time.monotonic() > deadline:
            raise RuntimeError(f"import queue not empty after {timeout:.0f} s")
        time.sleep(0.5)


def finished(table: AuditTable, *mids: str) -> int:
    """Certificates of ``mids`` with an outcome, as their summaries say now."""
    rows = [table.get_summary(mid) or {} for mid in mids]
    return sum(int(row.get(name) or 0) for row in rows for name in FINISHED)


def defaults_of(env: dict[str, str]) -> FunctionSettings:
    """The provider's settings, refused unless its window and budget are the shipped defaults."""
    settings = FunctionSettings.from_env(env)
    if settings.import_window_minutes != backpressure.DEFAULT_WINDOW_MINUTES or dict(settings.iot_tps) != DEFAULT_IOT_TPS:
        raise SystemExit(f"the deployed generated provider is not at the defaults (window {settings.import_window_minutes:g} "
                         f"min, budget {dict(settings.iot_tps)}): deploy it with THINGPRESS_IMPORT_WINDOW_MINUTES and "
                         "THINGPRESS_IOT_TPS unset")
    return settings


def measure(deployment: Deployment | None = None, timeout: float = 900.0, big_count: int = BIG) -> dict[str, float]:
    """Run the fairness and backlog measurement on the local deployment at its defaults; the figures."""
    deployment = deployment or Deployment.load(suffix=DEFAULT_ENV)
    outputs = deployment.outputs
    lam = deployment.client("lambda")
    provider_env = lam.get_function_configuration(
        FunctionName=outputs.vendors["generated"].function_name)["Environment"]["Variables"]
    settings = defaults_of(provider_env)
    window = backpressure.window_for(settings.import_window_minutes, settings.iot_tps)
    assert window is not None
    table = deployment.audit_table()
    work = Path(tempfile.mkdtemp(prefix="thingpress-fairness-"))
    alone_path, big_path, small_path = manifest(work, "alone", SMALL), manifest(work, "big", big_count), \
        manifest(work, "small", SMALL)
    wait_idle(deployment)
    emulator.set_quotas(outputs.endpoint_url, DEFAULT_IOT_TPS)
    sampler = DepthSampler(deployment)
    big = None
    try:
        sampler.start()
        started = time.monotonic()
        alone = deployment.upload(alone_path)
        alone_seconds = wait_complete(deployment, alone.manifest_id, timeout) - started
        wait_idle(deployment)

        big = deployment.upload(big_path)
        time.sleep(HEAD_START_SECONDS)
        started = time.monotonic()
        small = deployment.upload(small_path)
        before = finished(table, big.manifest_id, small.manifest_id)
        done = wait_complete(deployment, small.manifest_id, timeout)
        small_seconds = done - started
        rate = (finished(table, big.manifest_id, small.manifest_id) - before) / small_seconds
        # A little longer: the large manifest refills the window after the small one left.
        time.sleep(min(60.0, window.size / window.rate / 2))
    finally:
        sampler.stop()
        emulator.set_quotas(outputs.endpoint_url, {})
        if big is not None:
            stop_manifest(deployment, big, timeout)
    return {
        "fairness_default_seconds": round(small_seconds, 1),
        "fairness_default_window_minutes": float(settings.import_window_minutes),
        "fairness_small_alone_seconds": round(alone_seconds, 1),
        "fairness_ratio": round(small_seconds / alone_seconds, 2),
        "importer_saturation": round(rate / window.rate, 3),
        "backlog_over_window": round(sampler.deepest / window.size, 3),
        "backlog_max": float(sampler.deepest),
        "window_certificates": float(window.size),
        "big_certificates": float(big_count),
    }


def stop_manifest(deployment: Deployment, uploaded: Any, timeout: float) -> None:
    """Stop a manifest part-way: delete its object version (the provider then refuses it as gone) and
    drain what it queued at an unlimited importer budget; the importer's settings are put back."""
    deployment.client("s3").delete_object(Bucket=uploaded.bucket, Key=uploaded.key, VersionId=uploaded.version_id)
    importer = deployment.outputs.importer_function_name
    importer_env = configure(deployment, importer, {IOT_TPS: json.dumps(UNLIMITED, sort_keys=True)})
    try:
        table = deployment.audit_table()
        deadline = time.monotonic() + timeout
        while (table.get_summary(uploaded.manifest_id) or {}).get("state") not in (REFUSED, COMPLETE):
            if time.monotonic() > deadline:
                raise RuntimeError(f"manifest {uploaded.manifest_id} not stopped after {timeout:.0f} s")
            time.sleep(0.5)
        wait_idle(deployment, timeout)
    finally:
        restore(deployment, importer, importer_env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", type=int, default=BIG, help="certificates of the large manifest")
    args = parser.parse_args(argv)
    figures = measure(big_count=args.big)
    print(json.dumps(figures, sort_keys=True))
    return goals.exit_status(figures, goals.FAIRNESS)


if __name__ == "__main__":
    sys.exit(main())
