"""``make chaos``'s kill loop (step 2 of :mod:`.chaos`): which worker dies, when, and whether the kill counted.

One job: SIGKILL workers of the local runner that are in an invocation, every
``kill_interval`` seconds, for the chaos window; a provider only once some manifest's
checkpoint moved since the last provider kill.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from thingpress.audit.table import AuditTable
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.harness.chaos_checks import complete
from thingpress_cli.harness.chaos_result import Manifest, Result, Settings
from thingpress_cli.local import state
from thingpress_cli.local.runner.workers import worker_pids

#: How long after a kill the worker's busy file is looked at (the kill is asynchronous).
KILL_SETTLE_SECONDS = 0.2


def function_names(deployment: Deployment) -> list[str]:
    outputs = deployment.outputs
    return sorted({v.function_name for v in outputs.vendors.values()} | {outputs.importer_function_name})


def kill_one(functions: list[str], rng: random.Random, endpoint: str,
             busy_dir: Path = state.BUSY_DIR) -> tuple[str | None, bool]:
    """SIGKILL one random worker of ``functions`` that is in an invocation: (its function, effective);
    (None, False) when none is.

    Effective: the worker's busy file outlived it, so the kill ended its invocation (the
    file is then removed: nobody else will).
    """
    busy = sorted((pid, name) for name in functions for pid in worker_pids(name, endpoint)
                  if (busy_dir / str(pid)).exists())
    while busy:
        pid, name = busy.pop(rng.randrange(len(busy)))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        time.sleep(KILL_SETTLE_SECONDS)
        marker = busy_dir / str(pid)
        effective = marker.exists()
        marker.unlink(missing_ok=True)
        return name, effective
    return None, False


def parsed_so_far(table: AuditTable, manifests: list[Manifest]) -> int:
    """The sum of the manifests' checkpoints: moves whenever a provider commits."""
    return sum(int((table.get_summary(m.manifest_id) or {}).get("checkpoint") or 0) for m in manifests)


def kill_loop(deployment: Deployment, table: AuditTable, manifests: list[Manifest], settings: Settings,
              result: Result, rng: random.Random, endpoint: str) -> None:
    """Kill for ``settings.seconds``, then on until ``settings.min_kills`` effective kills or every manifest
    completed (at most four times the window); the kills counted in ``result``."""
    began = time.monotonic()
    # A provider is killed again only after some provider committed since its last kill: providers
    # are the longest invocations, and killing each one as it starts would stop every manifest.
    providers = [v.function_name for v in deployment.outputs.vendors.values()]
    importer = [deployment.outputs.importer_function_name]
    provider_killed_at = -1
    while True:
        elapsed = time.monotonic() - began
        if elapsed >= settings.seconds and (result.effective >= settings.min_kills or complete(table, manifests)):
            break
        if elapsed >= 4 * settings.seconds:
            result.notes.append(f"only {result.effective} effective kills in {elapsed:.0f} s: too few "
                                "invocations ran")
            break
        progress = parsed_so_far(table, manifests)
        killed, effective = kill_one(importer + (providers if progress > provider_killed_at else []), rng,
                                     endpoint)
        if killed in providers:
            provider_killed_at = progress
        result.kills += killed is not None
        result.effective += effective
        time.sleep(settings.kill_interval)
