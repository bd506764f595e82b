"""Importer benchmarks: handler cold import time, and whether worker threads pay off.

Run: ``.venv/bin/python tests/benchmarks/bench_importer_import.py [--import-only]``

1. Cold import: ``import <handler>`` in a fresh interpreter (task root = the
   function's folder under ``lambdas/``), seven runs per function; goal <= 400 ms.
   Also the importer's heaviest modules from ``python -X importtime``. (The
   packaging contract, tests/contract, imports each handler from the deployed zips
   once and prints its figure: the goal is checked here, not by a timed test.)
2. Throughput of ``thingpress.importer`` with a fake IoT client that answers
   after a fixed latency (40 ms, a typical control-plane round trip) and an
   in-memory audit table, for 1, 2, 4 and 8 worker threads under two budgets:
   the AWS default quotas (RegisterCertificateWithoutCA 10 TPS) and raised ones
   (100 TPS). The token buckets cap the rate; threads only hide latency.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stacks.naming import FUNCTION_KEYS, handler_module
from thingpress.importer import CertificateArns, Importer
from thingpress.messages import ImportMessage
from thingpress.settings import DEFAULT_IOT_TPS, FunctionSettings
from thingpress.throttle import Throttle

REPO = Path(__file__).resolve().parents[2]
TASK_ROOT = REPO / "lambdas" / "importer"
LATENCY = 0.040
MESSAGES = 120


def cold_import_ms(key: str = "importer", runs: int = 7) -> list[tuple[float, float]]:
    """(wall ms, CPU ms) of importing function ``key``'s handler per fresh interpreter.

    CPU time is reported too because the wall time on a shared machine includes
    waiting for a core; on an idle machine they are close.
    """
    code = (f"import time; w = time.perf_counter(); c = time.process_time(); import {handler_module(key)}; "
            "print((time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("THINGPRESS_")}
    out = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO / "lambdas" / key, env=env, capture_output=True,
                              text=True, check=True)
        wall, cpu = done.stdout.split()
        out.append((float(wall), float(cpu)))
    return out


def heaviest_imports(top: int = 8) -> list[tuple[int, str]]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import import_handler"], cwd=TASK_ROOT,
                          capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if "." not in name.strip():  # top-level packages only
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


class SlowIot:
    """Answers every call after LATENCY seconds (sleep releases the GIL, like a socket wait)."""

    def _answer(self, **_: Any) -> dict[str, str]:
        time.sleep(LATENCY)
        return {}

    def register_certificate_without_ca(self, **kwargs: Any) -> dict[str, str]:
        time.sleep(LATENCY)
        fingerprint = hashlib.sha256(x509.load_pem_x509_certificate(kwargs["certificatePem"].encode())
                                     .public_bytes(serialization.Encoding.DER)).hexdigest()
        return {"certificateId": fingerprint, "certificateArn": f"arn:aws:iot:us-east-1:1:cert/{fingerprint}"}

    create_thing = attach_thing_principal = attach_policy = add_thing_to_thing_group = _answer


class MemoryAudit:
    def get_outcome(self, mid: str, fingerprint: str) -> None:
        return None

    def record_outcome(self, *args: Any, **kwargs: Any) -> bool:
        return True


def messages(count: int) -> list[str]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    out = []
    for i in range(count):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Device-{i}")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(i + 1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
                .sign(key, hashes.SHA256()))
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        out.append(ImportMessage(manifest_id="generated-" + "0" * 20, vendor="generated", position=i + 1,
                                 thing_name=f"Device-{i}", fingerprint=fingerprint, certificate_pem=pem,
                                 queued_at="2026-11-21T01:02:03Z").encode())
    return out


def throughput(bodies: list[str], workers: int, tps: dict[str, float]) -> float:
    settings = FunctionSettings(audit_table="t", thing_type="T", thing_group="G", policy_names=("P",), iot_tps=tps)
    # Start with empty buckets so the burst allowance does not flatter short runs.
    throttle = Throttle.from_settings(settings)
    for api in tps:
        bucket = throttle.bucket(api)
        bucket._tokens = 0.0  # noqa: SLF001 -- benchmark only
    importer = Importer(SlowIot(), MemoryAudit(), settings,  # type: ignore[arg-type]
                        arns=CertificateArns("aws", "us-east-1", "1"), throttle=throttle)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda b: importer.handle(b[1], message_id=str(b[0])), enumerate(bodies)))
    return len(bodies) / (time.perf_counter() - started)


def main() -> None:
    for key in FUNCTION_KEYS:
        runs = cold_import_ms(key)
        walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
        print(f"cold import of {handler_module(key)} over {len(runs)} fresh interpreters (goal <= 400 ms):\n"
              f"  wall median {statistics.median(walls):.0f} ms (min {min(walls):.0f}, max {max(walls):.0f}); "
              f"CPU median {statistics.median(cpus):.0f} ms (min {min(cpus):.0f})"
              + ("" if statistics.median(cpus) <= 400 else "  ABOVE GOAL"))
    print("heaviest top-level imports (cumulative us):")
    for cumulative, name in heaviest_imports():
        print(f"  {cumulative:>9}  {name}")

    if "--import-only" in sys.argv:
        return
    bodies = messages(MESSAGES)
    raised = {api: 100.0 for api in DEFAULT_IOT_TPS}
    print(f"\nimporter throughput, certificates/s ({MESSAGES} messages, {LATENCY * 1000:.0f} ms per IoT call, "
          "one instance):")
    print(f"  {'workers':>7}  {'default quotas (10 TPS register)':>34}  {'raised quotas (100 TPS)':>24}")
    for workers in (1, 2, 4, 8):
        default = throughput(bodies, workers, dict(DEFAULT_IOT_TPS))
        high = throughput(bodies, workers, raised)
        print(f"  {workers:>7}  {default:>34.1f}  {high:>24.1f}")


if __name__ == "__main__":
    main()
