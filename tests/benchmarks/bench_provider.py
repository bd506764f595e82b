"""Provider benchmark: parse + enqueue throughput per vendor, and peak memory on a large manifest.

Run::

    .venv/bin/python tests/benchmarks/bench_provider.py                 # 10,000 per vendor, 100,000 for memory
    .venv/bin/python tests/benchmarks/bench_provider.py --count 2000 --memory-count 20000   # quick

For each vendor, a manifest of ``--count`` distinct, valid certificates is built
(Microchip: signed with a test signer, verified per entry; Infineon: a reel of
three bundles, E0E0 imported) and handed to ``thingpress.provider.Provider``
exactly as a Lambda invocation would, three ways:

* ``moto``       -- S3, SQS and DynamoDB all in-process moto (what the unit tests use);
* ``null SQS``   -- moto S3 and DynamoDB, SQS replaced by a client that accepts every
                    batch without doing anything: our code's own cost;
* ``parse only`` -- ``parse_manifest`` + ``scan`` over the bytes, no AWS at all.

The difference between the first two columns is moto's in-process SQS (request
serialization, signature, the fake queue's bookkeeping; a fresh queue every 50
messages because moto's send is O(queue depth)), which real SQS runs on
its own servers; a Lambda sees network latency instead (SendMessageBatch is a
~10-20 ms round trip; batches of 10 from one thread then cap near 500-1,000/s
unless sends are overlapped).

Memory: a ``--memory-count`` generated manifest is written to a temporary file
and read through an S3 stub that streams that file (so the manifest is never
held in memory by the emulator), with a null SQS and moto DynamoDB;
``tracemalloc`` reports the peak of Python allocations during the provider run. moto's
DynamoDB runs in this process, so the audit table's claim items (one per distinct
certificate: the only thing that grows with the manifest, and on AWS not in the
Lambda's memory) are part of that peak.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from cryptography.hazmat.primitives.serialization import Encoding

from offline_aws import load

from thingpress.manifest import scan
from thingpress.provider.queue_messages import ObjectRef
from thingpress.provider.runtime import Provider, Tuning
from thingpress.settings import FunctionSettings
from thingpress.vendors import ParseOptions, parse_manifest
from thingpress_cli.core.certificates import make_ca, write_manifest

GOALS = {"generated": 5_000, "espressif": 5_000, "microchip": 1_000, "infineon": None}
SUFFIX = {"generated": ".txt", "espressif": ".csv", "microchip": ".json", "infineon": ".7z"}




factories = load("factories")
aws_fixtures = load("aws_fixtures")


class NullSqs:
    """Accepts every message and keeps nothing: isolates our code from the emulator."""

    def __init__(self) -> None:
        self.messages = 0
        self.calls = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        self.messages += len(Entries)
        return {"Successful": [{"Id": e["Id"], "MessageId": e["Id"], "MD5OfMessageBody": ""} for e in Entries]}

    def send_message(self, **_: Any) -> dict[str, Any]:
        return {"MessageId": "continuation"}


class ShortQueueSqs:
    """moto's SQS, switching to a fresh queue every ``every`` batches.

    moto's ``send_message`` recomputes queue attributes over every message in the
    queue, so sending N messages to one undrained queue costs O(N^2): 10,000
    messages take minutes. A fresh queue every 20 batches keeps it as short as a
    consumer that keeps up would, so the figure is closer to moto's per-call cost
    (moto also refuses more than one PurgeQueue a minute).
    """

    def __init__(self, real: Any, every: int = 5):
        self.real, self.every = real, every
        self.calls = 0
        self.messages = 0
        self._url = ""

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        if self.calls % self.every == 0:
            self._url = aws_fixtures.create_queue(self.real, f"import-{id(self)}-{self.calls}")
        self.calls += 1
        out = self.real.send_message_batch(QueueUrl=self._url, Entries=Entries)
        self.messages += len(out.get("Successful", []))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class Timed:
    """Wraps a client and adds up the wall time spent inside its calls (the emulator's share).

    Calls may overlap (the claims are put from a few threads at once: ``thingpress.audit.claims``),
    so what is added up is the time during which at least one call is in flight (the union of the
    calls' intervals), and the process's CPU time during it: a sum per call would count an
    overlap once per call in flight and leave "our code" negative.
    """

    def __init__(self, real: Any):
        self.real = real
        self.seconds = 0.0
        self.cpu = 0.0
        self.calls = 0
        self._lock = threading.Lock()
        self._in_flight = 0
        self._since = (0.0, 0.0)

    def _enter(self) -> None:
        with self._lock:
            self.calls += 1
            if self._in_flight == 0:
                self._since = (time.perf_counter(), time.process_time())
            self._in_flight += 1

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self.seconds += time.perf_counter() - self._since[0]
                self.cpu += time.process_time() - self._since[1]

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if not callable(attr) or name.startswith("_") or name in ("exceptions", "meta", "get_paginator"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._enter()
            try:
                return attr(*args, **kwargs)
            finally:
                self._leave()
        return call


class FileS3:
    """get_object streams a local file (the memory run): the manifest never sits in RAM."""

    def __init__(self, path: Path):
        self.path = path

    def get_object(self, **_: Any) -> dict[str, Any]:
        return {"Body": self.path.open("rb")}


def build_manifests(count: int) -> tuple[dict[str, bytes], Any]:
    devs = factories.devices(count, prefix="Bench-")
    signer = factories.microchip_signer()
    manifests = {
        "generated": factories.generated_manifest(devs),
        "espressif": factories.espressif_manifest(factories.espressif_rows(devs)),
        "microchip": factories.microchip_manifest_for(devs, signer),
        # three bundles as in a real reel; only E0E0 is imported (the same certificates suffice)
        "infineon": factories.infineon_reel({"E0E0": devs, "E0E1": devs[:10], "E0E2": devs[:10]}),
    }
    return manifests, signer


def timed(run: Callable[[], int]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, result)."""
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    n = run()
    return time.perf_counter() - start, time.process_time() - cpu, n


def throughput(count: int, repeat: int) -> list[tuple[str, dict[str, float]]]:
    print(f"building {count:,}-certificate manifests for the four vendors ...", flush=True)
    manifests, signer = build_manifests(count)
    rows = []
    # in-process AWS as the emulator answers (its speed patches: no whole-table copy per transaction)
    with aws_fixtures.in_process_aws():
        s3 = boto3.client("s3", region_name=aws_fixtures.REGION)
        sqs = boto3.client("sqs", region_name=aws_fixtures.REGION)
        ddb = boto3.client("dynamodb", region_name=aws_fixtures.REGION)
        table = aws_fixtures.create_audit_table(ddb)
        aws_fixtures.create_bucket(s3, "manifests")
        aws_fixtures.create_bucket(s3, "signers")
        s3.put_object(Bucket="signers", Key="microchip/signer.crt", Body=signer.certificate.public_bytes(Encoding.PEM))
        import_queue = aws_fixtures.create_queue(sqs, "import")
        manifest_queue = aws_fixtures.create_queue(sqs, "manifests")
        for vendor, body in manifests.items():
            # no import window (0 minutes): nothing drains the import queue here, and the figure is
            # parse + enqueue, not backpressure (the default window would pause at 6,000 queued)
            settings = FunctionSettings(audit_table=table, import_queue_url=import_queue,
                                        manifest_queue_url=manifest_queue, vendor=vendor,
                                        microchip_signers="s3://signers/microchip/", import_window_minutes=0)
            figures: dict[str, float] = {}
            runs = [("moto", ShortQueueSqs(sqs))] + [("null SQS", NullSqs()) for _ in range(repeat)]
            for mode, client in runs:
                timed_s3, timed_ddb = Timed(s3), Timed(ddb)
                provider = Provider(vendor, settings=settings, s3=timed_s3, sqs=client, dynamodb=timed_ddb,
                                    tuning=Tuning())
                provider.options()  # signers loaded once per cold start: not part of the per-manifest figure
                key = f"{vendor}/bench{SUFFIX[vendor]}"
                put = s3.put_object(Bucket="manifests", Key=key, Body=body)
                ref = ObjectRef("manifests", key, put["VersionId"], put["ETag"].strip('"'), len(body))
                seconds, cpu, queued = timed(lambda p=provider, r=ref: p.process(r).queued)
                assert queued == count == client.messages, f"{vendor}/{mode}: queued {queued}, expected {count}"
                if queued / seconds < figures.get(mode, 0.0):
                    continue  # best of the repeats: the machine is shared
                figures[mode] = queued / seconds
                if mode == "null SQS":
                    # time minus the time inside moto's S3 and DynamoDB: our code alone
                    emulator = timed_s3.seconds + timed_ddb.seconds
                    figures["our code"] = queued / (seconds - emulator)
                    figures["our code cpu"] = queued / (cpu - timed_s3.cpu - timed_ddb.cpu)
                    figures["emulator share"] = emulator / seconds
            options = ParseOptions(microchip_signers=(signer.certificate,))
            figures["parse only"] = figures["parse only cpu"] = 0.0
            for _ in range(repeat):
                seconds, cpu, parsed = timed(lambda v=vendor, b=body, o=options:
                                             sum(1 for _ in scan(parse_manifest(v, io.BytesIO(b), o))))
                figures["parse only"] = max(figures["parse only"], parsed / seconds)
                figures["parse only cpu"] = max(figures["parse only cpu"], parsed / cpu)
            rows.append((vendor, figures))
            print(f"  {vendor:<10} moto {figures['moto']:>8,.0f}/s   null SQS {figures['null SQS']:>8,.0f}/s   "
                  f"our code {figures['our code']:>8,.0f}/s ({figures['our code cpu']:,.0f} per CPU-s)   "
                  f"parse only {figures['parse only']:>8,.0f}/s ({figures['parse only cpu']:,.0f} per CPU-s)",
                  flush=True)
    return rows


def memory(count: int) -> tuple[int, int, float]:
    print(f"writing a {count:,}-certificate generated manifest ...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.txt"
        write_manifest(path, count, ca=make_ca())
        size = path.stat().st_size
        with aws_fixtures.in_process_aws():
            ddb = boto3.client("dynamodb", region_name=aws_fixtures.REGION)
            table = aws_fixtures.create_audit_table(ddb)
            settings = FunctionSettings(audit_table=table, import_queue_url="null", manifest_queue_url="null",
                                        vendor="generated", import_window_minutes=0)  # nothing drains
            provider = Provider("generated", settings=settings, s3=FileS3(path), sqs=NullSqs(), dynamodb=ddb)
            provider.audit  # noqa: B018 -- create the table accessor before tracing
            gc.collect()
            tracemalloc.start()
            start = time.perf_counter()
            result = provider.process(ObjectRef("manifests", "generated/big.txt", "v1", "e1", size))
            seconds = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert result.queued == count, result
    return size, peak, seconds


LOAD_AT_START = os.getloadavg()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="certificates per vendor manifest (throughput)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many null-SQS and parse-only runs")
    parser.add_argument("--memory-count", type=int, default=100_000, help="certificates in the memory run")
    args = parser.parse_args(argv)
    for name, value in aws_fixtures.FAKE_CREDENTIALS.items():
        os.environ.setdefault(name, value)

    rows = throughput(args.count, args.repeat)
    print()
    print(f"parse + enqueue throughput, {args.count:,} certificates per manifest (certificates/s; "
          f"best of {args.repeat} except 'all moto'; {os.cpu_count()} CPUs, shared)")
    print(f"load average now {os.getloadavg()[0]:.1f} (at start {LOAD_AT_START:.1f}): wall-clock figures shrink "
          "when other processes share the CPUs; the per-CPU-second figures do not")
    print(f"{'vendor':<10} {'all moto':>9} {'null SQS':>9} {'moto S3+DDB':>12} {'our code':>9} {'per CPU-s':>10} "
          f"{'parse only':>11} {'per CPU-s':>10} {'goal':>6}  verdict (our code, per CPU-second)")
    for vendor, fig in rows:
        goal = GOALS[vendor]
        ours = fig["our code cpu"]
        if goal is None:
            verdict = "no goal set"
        elif ours >= goal:
            verdict = "meets goal" + ("; moto's SQS is what is slower" if fig["moto"] < goal else "")
        else:
            limit = "the parser" if fig["parse only cpu"] < goal * 1.2 else "provider overhead"
            verdict = f"BELOW goal (limited by {limit})"
        print(f"{vendor:<10} {fig['moto']:>9,.0f} {fig['null SQS']:>9,.0f} {fig['emulator share']:>12.0%} "
              f"{fig['our code']:>9,.0f} {ours:>10,.0f} {fig['parse only']:>11,.0f} {fig['parse only cpu']:>10,.0f} "
              f"{goal or '-':>6}  {verdict}")
    print("What limits each figure:\n"
          "  all moto   -- moto's in-process SQS: ~30-40 ms per SendMessageBatch here, and O(queue depth) per\n"
          "                message (so the benchmark rotates queues); real SQS costs a network round trip instead;\n"
          "  null SQS   -- SQS removed; still includes moto S3 (get_object) and moto DynamoDB (~50 ms per\n"
          "                checkpoint UpdateItem, one per 500 entries or 2 s), whose share of the time is shown;\n"
          "  our code   -- null SQS minus the time spent inside moto S3/DynamoDB: parsing, verification,\n"
          "                de-duplication, hashing, message encoding and batching;\n"
          "  parse only -- parse_manifest + scan on bytes in memory: the parser's own ceiling.")

    size, peak, seconds = memory(args.memory_count)
    print()
    print(f"memory: {args.memory_count:,}-certificate generated manifest ({size / 2**20:.1f} MiB), streamed from a "
          f"file, null SQS: peak Python allocations {peak / 2**20:.1f} MiB during the run "
          f"({args.memory_count / seconds:,.0f} certificates/s under tracemalloc). For this manifest the "
          "provider holds no more than claim_batch entries and one stretch of refusal rows at a time; what grows "
          "with the manifest is the claims (one audit-table item per distinct certificate: its fingerprint and "
          "position, how duplicates are found), which on AWS are DynamoDB items outside the Lambda, but here are "
          "moto's in-process table, so inside this peak (make bench-scale measures the provider's RSS with the "
          "claims in SQLite on disk).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
