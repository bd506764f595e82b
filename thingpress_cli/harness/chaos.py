"""``make chaos``: import several manifests at once while workers die and AWS misbehaves.

On the local deployment (brought up if it is not running, and taken down again
if this run started it, unless ``THINGPRESS_KEEP_LOCAL`` is set):

1. writes ``--manifests`` generated manifests sharing ``--certificates`` fresh
   certificates, and uploads them all at once;
2. for ``--seconds``, SIGKILLs a random worker process of the local runner that is
   in an invocation (any provider or the importer, as a crashed Lambda sandbox
   dies; an idle worker is never picked: killing it ends nothing; a provider only
   after some manifest's checkpoint moved since the last provider kill, else the
   longest invocations would be killed as they start, for ever) every
   ``--kill-interval`` seconds, going on past ``--seconds`` until ``--min-kills``
   effective kills are reached or every manifest has completed, while the emulator
   injects faults (``--faults``; :mod:`thingpress_cli.local.emulator.faults`: HTTP 500 after
   an applied DynamoDB or SQS write, partial ``SendMessageBatch`` failures,
   throttling bursts) and DynamoDB transaction conflicts (``--conflicts``, the share
   of writes answered as if a transaction held their item, on top of the emulator's
   own holds: :mod:`thingpress_cli.local.emulator.conflicts`);
3. switches the faults off, waits for every manifest to complete while the
   imports make progress (gives up after ``--settle`` seconds without any: a
   5,000-certificate run after ten minutes of kills can need longer than any fixed wait), and checks each certificate in the audit table and in IoT. A
   message killed on each of its ``maxReceiveCount`` receives is dead-lettered,
   on AWS as here: once the queues are idle the dead-letter queues are redriven
   as an operator would (``thingpress redrive``), and the count is printed.

It prints, last, one line::

    chaos: manifests M, certificates N, kills K (effective E), faults F, conflicts C, redriven R, max chains H, lost 0, duplicated 0, failed 0, stalled 0

*kills*: workers killed while in an invocation; *effective*: of those, the kills that
ended the invocation (the worker's busy file, :mod:`thingpress_cli.local.bootstrap`,
was still there after it died: it had not finished first). *conflicts*: writes the
emulator refused for a transaction conflict during the run (held items and injected
ones). *redriven*: dead letters moved back (below). *max chains*: the most provider
invocations that worked on one manifest at the same time, from the providers' logs
(each invocation's lines from "manifest taken" to "manifest let go", by request id);
1 is the design (``thingpress.provider``, "One live chain").

*lost*: a certificate without a terminal audit row, or not ACTIVE in IoT and
attached to its thing. *duplicated*: a certificate with more than one audit row,
a thing with more than one principal, or outcome counters that add up to more
than the manifest's certificates. *failed*: a row FAILED or REJECTED (every
generated certificate is valid). *stalled*: a manifest not COMPLETE in time.
The exit status is 0 only when those four are 0.

This module's one job is the run in order and its command line: the manifests
uploaded, faults switched on and off, the wait for completion (with the redrive)
and the verdict printed. The parts: :mod:`.chaos_result` (settings, manifests,
the line), :mod:`.chaos_kills` (step 2's kills), :mod:`.chaos_checks` (what step 3
counts).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stacks.naming import DEFAULT_ENV
from thingpress.audit.states import COMPLETE, OUTCOME_COUNTERS
from thingpress.audit.table import AuditTable
from thingpress.settings import STALL_AFTER_SECONDS, STALL_TIMEOUTS
from thingpress_cli.commands import redrive
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.harness.chaos_checks import LogMarks, check, complete, max_chains
from thingpress_cli.harness.chaos_kills import function_names, kill_loop
from thingpress_cli.harness.chaos_result import (CONFLICTS, DEFAULT_CERTIFICATES, DEFAULT_MANIFESTS, DEFAULT_SECONDS,
                                                 FAULTS, MIN_KILLS, Manifest, Result, Settings, write_manifests)
from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.local.runner.sqs_source import POLL_WAIT_SECONDS
from thingpress_cli.local.runner.supervisor import REFRESH_SECONDS


def progress_mark(table: AuditTable, manifests: list[Manifest]) -> tuple[Any, ...]:
    """What moves while the imports progress: each manifest's outcome counters and checkpoint."""
    rows = [table.get_summary(m.manifest_id) or {} for m in manifests]
    return tuple((row.get("checkpoint"), *(int(row.get(k) or 0) for k in OUTCOME_COUNTERS)) for row in rows)


def idle(deployment: Deployment) -> bool:
    """Nothing left to deliver: the import queue and every manifest queue hold no message at all."""
    out = deployment.outputs
    urls = [out.import_queue_url, *(v.manifest_queue_url for v in out.vendors.values())]
    return not any(deployment.queue_depth(url) for url in urls)


def redrive_dead_letters(deployment: Deployment) -> int:
    """Move every DLQ's messages back (SQS message move tasks, as ``thingpress redrive`` does); how many moved."""
    sqs = deployment.client("sqs")
    return sum(int(redrive.redrive(sqs, dlq)["moved"]) for dlq in redrive.dead_letter_queues(deployment, "all"))


@contextlib.contextmanager
def visibility_timeouts(sqs: Any, urls: list[str], seconds: int | None) -> Iterator[None]:
    """Each queue's visibility timeout set to ``seconds`` (None: unchanged) for a run that kills on purpose,
    then restored.

    A killed invocation's messages come back after the visibility timeout; a run that
    kills on purpose need not wait the deployment's full timeout. A receive takes the
    queue's timeout when it starts, so this returns once every long poll the local
    runner had open when the setting changed has ended.
    """
    if seconds is None:
        yield
        return
    before = {url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
              ["Attributes"]["VisibilityTimeout"] for url in urls}
    for url in urls:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(seconds)})
    time.sleep(POLL_WAIT_SECONDS + 0.5)
    try:
        yield
    finally:
        for url, value in before.items():
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": value})


@contextlib.contextmanager
def function_timeouts(lam: Any, names: list[str], seconds: int | None) -> Iterator[None]:
    """Each function's timeout set to ``seconds`` (None: unchanged) for a run that kills on purpose, then
    restored.

    A provider's lease on its manifest lasts until its invocation's deadline (``thingpress.provider``, "One
    live chain"), so the message of a killed provider waits out the rest of its timeout before the manifest
    goes on: a whole timeout for a provider killed early. The local runner applies a changed setting at its
    next refresh (``REFRESH_SECONDS``), restarting the function's workers: this returns after two.
    """
    if seconds is None:
        yield
        return
    before = {name: lam.get_function_configuration(FunctionName=name)["Timeout"] for name in names}
    for name in names:
        lam.update_function_configuration(FunctionName=name, Timeout=seconds)
    time.sleep(2 * REFRESH_SECONDS + 0.5)
    try:
        yield
    finally:
        for name, value in before.items():
            lam.update_function_configuration(FunctionName=name, Timeout=value)


@contextlib.contextmanager
def stall_threshold(lam: Any, watchdog: str, importer: str, provider_timeout: int | None) -> Iterator[None]:
    """The watchdog's stall threshold as the stack derives it (``STALL_TIMEOUTS`` times the longer of the
    provider's and the importer's timeout) from ``provider_timeout`` for a run that sets the providers' timeout
    (None: unchanged), then restored. Rows an importer killed between its puts and its count wait for the
    watchdog's recount, which waits for that threshold (``thingpress.audit``, "Counting, exactly once")."""
    if provider_timeout is None:
        yield
        return
    env = lam.get_function_configuration(FunctionName=watchdog)["Environment"]["Variables"]
    before = env.get(STALL_AFTER_SECONDS)
    longest = max(provider_timeout, lam.get_function_configuration(FunctionName=importer)["Timeout"])
    lam.update_function_configuration(FunctionName=watchdog, Environment={"Variables": {
        **env, STALL_AFTER_SECONDS: str(STALL_TIMEOUTS * longest)}})
    try:
        yield
    finally:
        env = lam.get_function_configuration(FunctionName=watchdog)["Environment"]["Variables"]
        restored = {k: v for k, v in env.items() if k != STALL_AFTER_SECONDS}
        if before is not None:
            restored[STALL_AFTER_SECONDS] = before
        lam.update_function_configuration(FunctionName=watchdog, Environment={"Variables": restored})


def run(deployment: Deployment, settings: Settings, workdir: Path, say=print) -> Result:
    """The chaos run (the module's steps 1 to 3) with the manifest queues' visibility and the providers'
    timeout (and the watchdog's stall threshold with it) as ``settings`` say."""
    outputs = deployment.outputs
    vendors = outputs.vendors.values()
    lam = deployment.client("lambda")
    with (visibility_timeouts(deployment.client("sqs"), [v.manifest_queue_url for v in vendors],
                              settings.manifest_visibility_seconds),
          stall_threshold(lam, outputs.watchdog_function_name, outputs.importer_function_name,
                          settings.provider_timeout_seconds),
          function_timeouts(lam, [v.function_name for v in vendors], settings.provider_timeout_seconds)):
        return _run(deployment, settings, workdir, say)


def _run(deployment: Deployment, settings: Settings, workdir: Path, say=print) -> Result:
    seed = settings.seed or secrets.randbelow(1 << 30) + 1
    rng = random.Random(seed)
    endpoint = deployment.outputs.endpoint_url
    if not endpoint:
        raise SystemExit("chaos runs on the local deployment only (its outputs name no emulator endpoint)")
    manifests = write_manifests(workdir, settings)
    functions = function_names(deployment)
    result = Result(len(manifests), settings.certificates)
    table = deployment.audit_table()
    say(f"chaos: seed {seed}; {len(manifests)} manifests, {settings.certificates} certificates; "
        f"killing workers of {', '.join(functions)} every {settings.kill_interval:.1f} s for {settings.seconds:.0f} s")
    faults_before = emulator.fault_report(endpoint)["total"]
    holds = emulator.conflict_report(endpoint)
    conflicts_before = sum(holds["counts"].values())
    marks = LogMarks.now([v.function_name for v in deployment.outputs.vendors.values()])
    emulator.set_faults(endpoint, {**settings.faults, "seed": seed})
    emulator.set_conflicts(endpoint, {**holds["settings"], "inject": settings.conflicts, "seed": seed})
    try:
        uploads = [threading.Thread(target=lambda m=m: setattr(m, "manifest_id", deployment.upload(m.path).manifest_id))
                   for m in manifests]
        for upload in uploads:
            upload.start()
        for upload in uploads:
            upload.join()
        kill_loop(deployment, table, manifests, settings, result, rng, endpoint)
    finally:
        report = emulator.set_faults(endpoint, {})
        answered = emulator.set_conflicts(endpoint, holds["settings"])
    result.faults = report["total"] - faults_before
    result.conflicts = sum(answered["counts"].values()) - conflicts_before
    say(f"chaos: {result.kills} kills, {result.faults} faults ({report['counts']}); waiting for the imports")
    deadline, seen = time.monotonic() + settings.settle, progress_mark(table, manifests)
    while not complete(table, manifests) and time.monotonic() < deadline:
        if (now := progress_mark(table, manifests)) != seen:
            deadline, seen = time.monotonic() + settings.settle, now
        if idle(deployment):
            result.redriven += redrive_dead_letters(deployment)
        time.sleep(1.0)
    if result.redriven:
        say(f"chaos: {result.redriven} messages were dead-lettered (killed on each of their receives) and "
            "redriven, as an operator would (thingpress redrive)")
    for manifest in manifests:
        row = table.get_summary(manifest.manifest_id)
        if not row or row["state"] != COMPLETE:
            result.stalled += 1
            result.notes.append(f"stalled {manifest.path.name}: {manifest.manifest_id} "
                                f"state {row and row.get('state')}, {row and {k: row.get(k) for k in ('checkpoint', 'queued', 'imported', 'outstanding')}}")
        check(deployment, manifest, result)
    result.chains = max_chains(marks.lines(), {m.manifest_id for m in manifests})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thingpress_cli.harness.chaos",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="chaos window (default %(default)s)")
    parser.add_argument("--certificates", type=int, default=DEFAULT_CERTIFICATES, help="default %(default)s")
    parser.add_argument("--manifests", type=int, default=DEFAULT_MANIFESTS, help="default %(default)s")
    parser.add_argument("--min-kills", type=int, default=MIN_KILLS, help="default %(default)s")
    parser.add_argument("--kill-interval", type=float, default=1.0, help="seconds between kills (default %(default)s)")
    parser.add_argument("--faults", type=json.loads, default=FAULTS,
                        help=f"the emulator's fault settings, JSON (default {json.dumps(FAULTS)})")
    parser.add_argument("--conflicts", type=float, default=CONFLICTS,
                        help="share of DynamoDB writes answered with a transaction conflict (default %(default)s)")
    parser.add_argument("--settle", type=float, default=600.0,
                        help="after the window, give up waiting for completion after this many seconds without progress")
    parser.add_argument("--seed", type=int, default=0, help="0: random (printed)")
    parser.add_argument("--manifest-visibility-seconds", type=int, default=None,
                        help="the manifest queues' visibility timeout during the run (default: as deployed)")
    parser.add_argument("--provider-timeout-seconds", type=int, default=None,
                        help="the providers' timeout during the run (default: as deployed)")
    args = parser.parse_args(argv)
    settings = Settings(args.seconds, args.certificates, args.manifests, args.min_kills, args.kill_interval,
                        args.settle, args.seed, args.faults, args.manifest_visibility_seconds, args.conflicts,
                        args.provider_timeout_seconds)
    from thingpress_cli.commands import local as local_cmd

    started = not local_cmd.is_up()
    local_cmd.ensure_up()
    try:
        with tempfile.TemporaryDirectory(prefix="thingpress-chaos-") as workdir:
            result = run(Deployment.load(suffix=DEFAULT_ENV), settings, Path(workdir), say=lambda m: print(m, file=sys.stderr))
    finally:
        if started and not os.environ.get("THINGPRESS_KEEP_LOCAL"):
            local_cmd.down()
    for note in result.notes:
        print(note, file=sys.stderr)
    print(result.line(), flush=True)
    return 0 if result.clean else 1


if __name__ == "__main__":
    raise SystemExit(main())