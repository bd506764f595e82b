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
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from stacks.naming import DEFAULT_ENV
from thingpress import certs
from thingpress.audit.states import COMPLETE, FAILED, OUTCOME_COUNTERS, REJECTED, STATUSES
from thingpress.audit.table import AuditTable
from thingpress_cli.commands import redrive
from thingpress_cli.core.certificates import device_certificates, make_ca, manifest_line
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.local import state
from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.local.runner.sqs_source import POLL_WAIT_SECONDS
from thingpress_cli.local.runner.workers import worker_pids

#: ``make chaos`` defaults: short enough for ``make test``, still at least MIN_KILLS kills.
DEFAULT_SECONDS = 20.0
DEFAULT_CERTIFICATES = 300
DEFAULT_MANIFESTS = 4
MIN_KILLS = 10
#: The faults the emulator injects during the chaos window (see thingpress_cli.local.emulator.faults).
FAULTS: dict[str, Any] = {"error_after_write": 0.03, "partial_batch": 0.2,
                          "throttle": {"every": 6.0, "length": 1.0, "share": 0.5}}
#: The share of DynamoDB writes answered with a transaction conflict during the window.
CONFLICTS = 0.03
#: How long after a kill the worker's busy file is looked at (the kill is asynchronous).
KILL_SETTLE_SECONDS = 0.2


@dataclass
class Settings:
    seconds: float = DEFAULT_SECONDS
    certificates: int = DEFAULT_CERTIFICATES
    manifests: int = DEFAULT_MANIFESTS
    min_kills: int = MIN_KILLS
    kill_interval: float = 1.0
    settle: float = 600.0  # seconds without progress, after the window
    seed: int = 0  # 0: a random seed (printed)
    faults: dict[str, Any] = field(default_factory=lambda: dict(FAULTS))
    #: the manifest queues' visibility timeout during the run (restored after), so a killed provider's
    #: message comes back in seconds rather than the deployment's 1.5 x 60 s; None: leave it as deployed
    manifest_visibility_seconds: int | None = None
    #: the share of DynamoDB writes answered with a transaction conflict during the window
    conflicts: float = CONFLICTS


@dataclass
class Manifest:
    path: Path
    expected: dict[str, str]  # fingerprint -> thing name
    manifest_id: str = ""


@dataclass
class Result:
    manifests: int
    certificates: int
    kills: int = 0
    effective: int = 0
    faults: int = 0
    conflicts: int = 0
    chains: int = 0
    lost: int = 0
    duplicated: int = 0
    failed: int = 0
    stalled: int = 0
    #: messages a DLQ held once the queues were idle, moved back (a message killed on each of its
    #: maxReceiveCount receives is dead-lettered on AWS too; the operator's answer is a redrive).
    redriven: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (self.lost, self.duplicated, self.failed, self.stalled) == (0, 0, 0, 0)

    def line(self) -> str:
        return (f"chaos: manifests {self.manifests}, certificates {self.certificates}, kills {self.kills} "
                f"(effective {self.effective}), faults {self.faults}, conflicts {self.conflicts}, redriven "
                f"{self.redriven}, max chains {self.chains}, lost {self.lost}, duplicated {self.duplicated}, "
                f"failed {self.failed}, stalled {self.stalled}")


def write_manifests(workdir: Path, settings: Settings) -> list[Manifest]:
    """``settings.manifests`` generated manifests of fresh certificates (thing names unique to this run)."""
    authority, tag = make_ca(), secrets.token_hex(4)
    sizes = [settings.certificates // settings.manifests + (i < settings.certificates % settings.manifests)
             for i in range(settings.manifests)]
    written = []
    for index, size in enumerate(sizes):
        path = workdir / f"chaos-{tag}-{index}.txt"
        expected = {}
        with path.open("wb") as out:
            for device in device_certificates(authority, size, prefix=f"Chaos-{tag}-{index}-"):
                out.write(manifest_line(device.pem))
                expected[certs.fingerprint(certs.der_bytes(device.certificate))] = device.name
        written.append(Manifest(path, expected))
    return written


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


@dataclass
class LogMarks:
    """Where each provider's log ended when the run started (only later lines are read)."""

    offsets: dict[Path, int]

    @classmethod
    def now(cls, functions: list[str], log_dir: Path = state.LOG_DIR) -> LogMarks:
        paths = [log_dir / f"{name}.log" for name in functions]
        return cls({p: p.stat().st_size if p.exists() else 0 for p in paths})

    def lines(self) -> Iterator[dict[str, Any]]:
        """The JSON log lines written since (Powertools' structured lines; others skipped)."""
        for path, offset in self.offsets.items():
            if not path.exists():
                continue
            with path.open("rb") as log:
                log.seek(offset)
                for raw in log:
                    if raw.startswith(b"{"):
                        with contextlib.suppress(ValueError):
                            yield json.loads(raw)


def max_chains(lines: Iterator[dict[str, Any]], manifest_ids: set[str]) -> int:
    """The most provider invocations working on one manifest at once: each invocation's interval from
    "manifest taken" to "manifest let go" (its last line if it was killed), by request id."""
    spans: dict[tuple[str, str], list[datetime]] = {}
    for line in lines:
        mid, request = line.get("manifest_id"), line.get("function_request_id")
        if mid not in manifest_ids or not request:
            continue
        stamp = datetime.strptime(line["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z")
        key = (mid, request)
        if line.get("message") == "manifest taken":
            spans[key] = [stamp, stamp]
        elif key in spans:
            spans[key][1] = stamp
    most = 0
    for mid in manifest_ids:
        events = sorted((t, step) for (m, _), (start, end) in spans.items() if m == mid
                        for t, step in ((start, 1), (end, -1)))
        running = 0
        for _, step in events:
            running += step
            most = max(most, running)
    return most


def complete(table: AuditTable, manifests: list[Manifest]) -> bool:
    return all((row := table.get_summary(m.manifest_id)) and row["state"] == COMPLETE for m in manifests)


def progress_mark(table: AuditTable, manifests: list[Manifest]) -> tuple[Any, ...]:
    """What moves while the imports progress: each manifest's outcome counters and checkpoint."""
    rows = [table.get_summary(m.manifest_id) or {} for m in manifests]
    return tuple((row.get("checkpoint"), *(int(row.get(k) or 0) for k in OUTCOME_COUNTERS)) for row in rows)


def check(deployment: Deployment, manifest: Manifest, result: Result) -> None:
    """Add this manifest's lost, duplicated and failed certificates to ``result``."""
    table = deployment.audit_table()
    rows = [r for r in table.entries(manifest.manifest_id) if r["sk"].startswith("C#")]
    by_fingerprint: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_fingerprint.setdefault(row["fingerprint"], []).append(row)
    result.duplicated += sum(len(found) - 1 for found in by_fingerprint.values() if len(found) > 1)
    result.failed += sum(1 for row in rows if row["status"] in (FAILED, REJECTED))
    summary = table.get_summary(manifest.manifest_id) or {}
    counted = sum(int(summary.get(k) or 0) for k in ("imported", "already_present", "rejected", "failed"))
    result.duplicated += max(0, counted - len(manifest.expected))
    iot = deployment.client("iot")

    def in_iot(fingerprint: str, thing_name: str) -> tuple[bool, int]:
        try:
            described = iot.describe_certificate(certificateId=fingerprint)["certificateDescription"]
            principals = iot.list_thing_principals(thingName=thing_name)["principals"]
        except (iot.exceptions.ResourceNotFoundException, iot.exceptions.InvalidRequestException):
            return False, 0
        return described["status"] == "ACTIVE" and described["certificateArn"] in principals, len(principals)

    with ThreadPoolExecutor(8) as pool:
        found = dict(zip(manifest.expected, pool.map(lambda item: in_iot(*item), manifest.expected.items())))
    for fingerprint in manifest.expected:
        present, principals = found[fingerprint]
        terminal = any(r["status"] in STATUSES for r in by_fingerprint.get(fingerprint, []))
        if not (present and terminal):
            result.lost += 1
            result.notes.append(f"lost {manifest.expected[fingerprint]} ({fingerprint[:12]}): "
                                f"audit row {'yes' if terminal else 'no'}, in IoT {'yes' if present else 'no'}")
        result.duplicated += max(0, principals - 1)


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


def run(deployment: Deployment, settings: Settings, workdir: Path, say=print) -> Result:
    """The chaos run (the module's steps 1 to 3) with the manifest queues' visibility as ``settings`` say."""
    urls = [v.manifest_queue_url for v in deployment.outputs.vendors.values()]
    with visibility_timeouts(deployment.client("sqs"), urls, settings.manifest_visibility_seconds):
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
    args = parser.parse_args(argv)
    settings = Settings(args.seconds, args.certificates, args.manifests, args.min_kills, args.kill_interval,
                        args.settle, args.seed, args.faults, args.manifest_visibility_seconds, args.conflicts)
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
