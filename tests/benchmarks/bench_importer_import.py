"""Importer benchmarks: handler cold import time, and whether worker threads pay off.

Run: ``.venv/bin/python tests/benchmarks/bench_importer_import.py [--import-only] [--figures FILE]``

1. Cold import of every handler from the zips the stack deploys, in Lambda's layout
   as tests/contract lays them out (stacks.packaging: the function zip unpacked as
   the task root, the layer zip under ``opt/``; a fresh ``python -I -B`` whose
   sys.path is exactly [task root, opt/python] plus the standard library), seven
   fresh interpreters per handler. The figure is the median CPU ms of ``import
   <handler>`` (``cold_import_ms_<handler>``; the wall time, which on a shared
   machine includes waiting for a core, is printed beside it); goal <= 400 ms
   (``goals.COLD_IMPORT``): a missed goal is named and the exit status is 1, and
   ``make bench`` (run_all.py, ``--figures``) fails on it too. Then the heaviest
   top-level imports of the slowest handler, from ``python -X importtime`` in the
   same layout: what to defer when a handler nears the goal.
2. Throughput of ``thingpress.importer`` with a fake IoT client that answers
   after a fixed latency (40 ms, a typical control-plane round trip) and an
   in-memory audit table, for 1, 2, 4 and 8 worker threads under two budgets:
   the AWS default quotas (RegisterCertificateWithoutCA 10 TPS) and raised ones
   (100 TPS). The token buckets cap the rate; threads only hide latency.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import goals
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stacks import defaults, packaging
from stacks.naming import FUNCTION_KEYS, handler_module
from thingpress.importer.rules import CertificateArns
from thingpress.importer.runtime import Importer
from thingpress.messages import ImportMessage
from thingpress.settings import DEFAULT_IOT_TPS, FunctionSettings
from thingpress.throttle import Throttle

LATENCY = 0.040
MESSAGES = 120
RUNS = 7
#: Lambda sets these; the handlers may read settings at import time (as tests/contract's LAMBDA_ENV).
LAMBDA_ENV = {
    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing", "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "thingpress", "POWERTOOLS_SERVICE_NAME": "bench",
    "THINGPRESS_AUDIT_TABLE": "audit", "THINGPRESS_IMPORT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/i",
    "THINGPRESS_MANIFEST_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/m",
}
#: the child: the deployed code only on sys.path, then ``import <handler>`` timed. A line on stderr
#: marks where the handler's import starts (``-X importtime`` lists site's imports before it).
CHILD = r"""
import sys, time
task, opt, module = sys.argv[1:4]
sys.path[:] = [task, opt] + [p for p in sys.path if "-packages" not in p and p not in ("", ".")]
print("-- handler", file=sys.stderr, flush=True)
wall, cpu = time.perf_counter(), time.process_time()
__import__(module)
print((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
"""


@dataclass(frozen=True)
class Layout:
    """The deployed zips unpacked as Lambda unpacks them."""

    opt: Path  #: the layer's ``python/`` folder
    tasks: dict[str, Path]  #: function key -> its task root


def lambda_layout(root: Path) -> Layout:
    """Build the layer and every function zip (stacks.packaging, as the stack deploys them); unpack under ``root``."""
    python_version = defaults.DEFAULT_RUNTIME.removeprefix("python")
    layer = packaging.build_layer(python_version, defaults.DEFAULT_ARCHITECTURE)
    with zipfile.ZipFile(layer.path) as zf:
        zf.extractall(root / "opt")
    tasks = {}
    for key in FUNCTION_KEYS:
        with zipfile.ZipFile(packaging.build_function(key, python_version=python_version).path) as zf:
            zf.extractall(root / "task" / key)
        tasks[key] = root / "task" / key
    return Layout(root / "opt" / "python", tasks)


def _child(layout: Layout, key: str, *flags: str) -> subprocess.CompletedProcess[str]:
    # -B: Lambda's code folders are read-only, no bytecode is ever written there.
    task = layout.tasks[key]
    return subprocess.run([sys.executable, "-I", "-B", *flags, "-c", CHILD, str(task), str(layout.opt),
                           handler_module(key)], cwd=task, env={"PATH": os.environ.get("PATH", ""), **LAMBDA_ENV},
                          capture_output=True, text=True, check=True)


def cold_import_ms(layout: Layout, key: str, runs: int = RUNS) -> list[tuple[float, float]]:
    """(wall ms, CPU ms) of importing function ``key``'s handler, one fresh interpreter per run."""
    out = []
    for _ in range(runs):
        wall, cpu = _child(layout, key).stdout.split()
        out.append((float(wall), float(cpu)))
    return out


def heaviest_imports(layout: Layout, key: str, top: int = 8) -> list[tuple[int, str]]:
    """The ``top`` heaviest top-level imports of ``key``'s handler (cumulative microseconds, ``-X importtime``)."""
    stderr = _child(layout, key, "-X", "importtime").stderr
    rows = []
    for line in stderr[stderr.index("-- handler\n"):].splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if "." not in name:  # top-level packages only
            rows.append((int(cumulative), name))
    return sorted(rows, reverse=True)[:top]


def cold_imports(layout: Layout, runs: int = RUNS) -> dict[str, float]:
    """Print every handler's cold import and the slowest one's heaviest imports; the figures."""
    figures: dict[str, float] = {}
    for key in FUNCTION_KEYS:
        module = handler_module(key)
        found = cold_import_ms(layout, key, runs)
        walls, cpus = [r[0] for r in found], [r[1] for r in found]
        figure = goals.cold_import_figure(module)
        figures[figure] = round(statistics.median(cpus), 1)
        print(f"cold import of {module} from the deployed zips over {len(found)} fresh interpreters "
              f"(goal {goals.describe(goals.COLD_IMPORT, figure)} ms CPU):\n"
              f"  CPU median {statistics.median(cpus):.0f} ms (min {min(cpus):.0f}); "
              f"wall median {statistics.median(walls):.0f} ms (min {min(walls):.0f}, max {max(walls):.0f})"
              + ("  ABOVE GOAL" if goals.missed_goals({figure: figures[figure]}, goals.COLD_IMPORT) else ""))
    slowest = max(FUNCTION_KEYS, key=lambda k: figures[goals.cold_import_figure(handler_module(k))])
    figures[goals.COLD_IMPORT_MAX] = figures[goals.cold_import_figure(handler_module(slowest))]
    print(f"heaviest top-level imports of {handler_module(slowest)} (cumulative us, -X importtime):")
    for cumulative, name in heaviest_imports(layout, slowest):
        print(f"  {cumulative:>9}  {name}")
    return figures


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--import-only", action="store_true", help="only the cold imports")
    parser.add_argument("--figures", type=Path, help="write the cold-import figures here (JSON; make bench reads them)")
    parser.add_argument("--runs", type=int, default=RUNS, help="fresh interpreters per handler")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="thingpress-cold-import-") as root:
        figures = cold_imports(lambda_layout(Path(root)), args.runs)
    if args.figures:
        args.figures.parent.mkdir(parents=True, exist_ok=True)
        args.figures.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")

    if not args.import_only:
        bodies = messages(MESSAGES)
        raised = {api: 100.0 for api in DEFAULT_IOT_TPS}
        print(f"\nimporter throughput, certificates/s ({MESSAGES} messages, {LATENCY * 1000:.0f} ms per IoT call, "
              "one instance):")
        print(f"  {'workers':>7}  {'default quotas (10 TPS register)':>34}  {'raised quotas (100 TPS)':>24}")
        for workers in (1, 2, 4, 8):
            default = throughput(bodies, workers, dict(DEFAULT_IOT_TPS))
            high = throughput(bodies, workers, raised)
            print(f"  {workers:>7}  {default:>34.1f}  {high:>24.1f}")
    return goals.exit_status(figures, goals.COLD_IMPORT)


if __name__ == "__main__":
    raise SystemExit(main())
