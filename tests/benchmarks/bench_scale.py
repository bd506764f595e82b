"""Scale benchmark (``make bench-scale``): resume overhead and peak memory of the provider.

Writes ``docs/scale.md`` and ``docs/scale.json`` and prints the table. Every figure
comes from a provider process of its own (this script re-runs itself with
``--child``), fed exactly as a Lambda invocation would be (``Provider.handle`` with an
SQS event, then every continuation it sends), so CPU seconds and the peak RSS
(``ru_maxrss``) are the provider's alone:

* ``resume_overhead_generated``: a generated manifest of 1,000,000 distinct
  certificates, processed in K >= 20 forced chunks, CPU seconds over one pass;
* ``resume_overhead_microchip``: the same for a signed Microchip manifest of 100,000
  entries (every signature verified) in K >= 10 chunks;
* ``peak_rss_mib_1m`` / ``peak_rss_mib_10k``: the provider process's peak RSS for one
  pass over the 1,000,000- and the 10,000-certificate generated manifest, and
  ``peak_rss_growth`` = 1m / 10k - 1;
* ``fairness_default_seconds`` / ``importer_saturation`` / ``backlog_over_window``: bench_fairness.py on the
  local deployment at its defaults.

Every figure with a goal (``goals.SCALE``, issue 13) is judged: a missed goal is printed
by name and the exit status is 1 (after docs/scale.md and docs/scale.json are written).

What the provider runs against: its real code (``AuditTable``, ``BatchSender``, the ranged
reader) with real boto3 clients, whose requests are serialized and answers parsed as for AWS
(``offline_aws``):

* S3: the cached manifest file, ranged GETs answered by seeking in the child (the body streams
  from disk: the manifest is never in memory);
* SQS: every SendMessageBatch accepted and counted in the child; continuations kept, to deliver
  them as the next invocation;
* DynamoDB: the claim transactions answered in the child as DynamoDB answers new certificates
  (they would live in the table, outside the Lambda), everything else (the summary) on a moto
  server in the parent process (:class:`DynamoServer`): nothing of moto is in the measured process.

Manifests are built once and cached under ``build/bench-scale/`` (a few seconds for
the generated one): distinct certificates made cheaply from one signed template by
giving each a different serial number and CN (the provider parses certificates, it
does not verify the device certificate's signature, so the figures are the same as
for properly signed ones); the Microchip entries are each signed with ES256 as
Microchip signs them.

The measurements are a list of functions returning a dict each (``MEASUREMENTS``), so
more can be added (e.g. a fairness/backlog measurement ``tests/benchmarks/
bench_fairness.py: measure() -> dict``).

    .venv/bin/python tests/benchmarks/bench_scale.py            # the figures above
    .venv/bin/python tests/benchmarks/bench_scale.py --quick    # 100,000 / 20,000: a smoke run
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import goals
from offline_aws import CountingQueues, FileObjects, HeldClaims, load

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "bench-scale"


# -- manifests (cached) ------------------------------------------------------------------


def _template() -> tuple[bytes, bytes, bytes, Any]:
    """One device certificate (DER) with a fixed-width serial and CN, and its issuing CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from thingpress_cli.core.certificates import make_ca

    ca = make_ca()
    key = ec.generate_private_key(ec.SECP256R1())
    serial = 0x5A5A000000000000
    cn = "Bench-00000000"
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca.intermediate.subject).public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
            .sign(ca.intermediate_key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    return der, serial.to_bytes(8, "big"), cn.encode(), ca


def _distinct(der: bytes, serial: bytes, cn: bytes, i: int) -> bytes:
    """The template with serial and CN number ``i``: a distinct certificate (its own fingerprint)."""
    assert der.count(serial) == 1 and der.count(cn) == 1
    return der.replace(serial, serial[:4] + i.to_bytes(4, "big")).replace(cn, f"Bench-{i:08d}".encode())


def _pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = b"\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN CERTIFICATE-----\n" + lines + b"\n-----END CERTIFICATE-----\n"


def generated_manifest(count: int) -> Path:
    path = CACHE / f"generated-{count}.txt"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    der, serial, cn, _ = _template()
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        for i in range(count):
            out.write(base64.b64encode(_pem(_distinct(der, serial, cn, i))) + b"\n")
    tmp.rename(path)
    return path


def microchip_manifest(count: int) -> tuple[Path, Path]:
    """The manifest and its signer certificate (PEM)."""
    path, signer_path = CACHE / f"microchip-{count}.json", CACHE / f"microchip-{count}.signer.pem"
    if path.exists() and signer_path.exists():
        return path, signer_path
    CACHE.mkdir(parents=True, exist_ok=True)
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from thingpress_cli.core.certificates import Device

    factories = load("factories")
    signer = factories.microchip_signer()
    der, serial, cn, _ = _template()
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        out.write(b"[\n")
        for i in range(count):
            cert = x509.load_der_x509_certificate(_distinct(der, serial, cn, i))
            entry = factories.microchip_entry(signer, factories.microchip_unique_id(i), Device(f"Bench-{i}", cert))
            out.write((b",\n" if i else b"") + json.dumps(entry, indent=2).encode())
        out.write(b"\n]\n")
    signer_path.write_bytes(signer.certificate.public_bytes(Encoding.PEM))
    tmp.rename(path)
    return path, signer_path


# -- the child: one provider process -------------------------------------------------------


class Context:
    """A Lambda context with all the time in the world (chunks are forced by the entry limit)."""

    function_name = "thingpress-provider-bench"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:thingpress-provider-bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def child(vendor: str, path: Path, count: int, chunks: int, signer: Path | None, table: str) -> dict[str, Any]:
    """Run one manifest through the provider in this process; CPU seconds after start-up, peak RSS.

    The provider's real code and real boto3 clients (``offline_aws``): the object answered from the
    file and the queues counted in this process, the claims answered as new (on AWS they live in the
    table), the rest of DynamoDB (the summary: start, lease, checkpoints) on a moto server in the
    parent process (:data:`DYNAMODB_URL`), as DynamoDB is outside the Lambda. Nothing of moto is
    loaded here: the peak RSS is the provider's, with the SDK's."""
    import boto3
    from cryptography import x509

    from thingpress.audit.keys import claims_pk, manifest_id
    from thingpress.provider.runtime import Provider, Tuning
    from thingpress.settings import FunctionSettings

    events = load("events")
    per_chunk = math.ceil(count / chunks) if chunks > 1 else count + 1
    dynamodb = boto3.client("dynamodb", region_name=events.REGION, endpoint_url=os.environ[DYNAMODB_URL])
    s3, sqs = boto3.client("s3", region_name=events.REGION), boto3.client("sqs", region_name=events.REGION)
    objects, queues, claims = FileObjects(path), CountingQueues(), HeldClaims(claims_pk(""))
    objects.install(s3)
    queues.install(sqs)
    claims.install(dynamodb)
    settings = FunctionSettings(audit_table=table, import_queue_url=f"{QUEUES}/import", manifest_queue_url=f"{QUEUES}/manifests",
                                vendor=vendor, microchip_signers="s3://signers/" if signer else "")
    provider = Provider(vendor, settings=settings, s3=s3, sqs=sqs, dynamodb=dynamodb,
                        tuning=Tuning(max_entries_per_invocation=per_chunk), window=lambda _summary: None)
    # No backpressure (``window`` unlimited): nothing imports here, so a window would pause the
    # manifest for good; the provider's own cost is measured, bench_fairness measures the window.
    if signer:
        provider._signers = tuple(x509.load_pem_x509_certificates(signer.read_bytes()))
    key = f"{vendor}/bench{path.suffix}"
    event = events.s3_event("manifests", key, version_id="v1", etag="e1", size=objects.size)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, rss0 = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
    wall0 = time.perf_counter()
    pending: list[Any] = [event]
    invocations = 0
    while pending:
        invocations += 1
        out = provider.handle(events.sqs_event(pending.pop()), Context())
        assert out == {"batchItemFailures": []}, out
        pending.extend(queues.continuations)
        queues.continuations.clear()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary = provider.audit.get_summary(manifest_id(vendor, "manifests", key, "v1"))
    assert summary["parse_done"] and summary["entries"] == count and summary["queued"] == count, summary
    assert queues.messages == count and claims.claims == count, (queues.messages, claims.claims)
    return {"cpu_seconds": usage.ru_utime + usage.ru_stime - cpu0, "wall_seconds": time.perf_counter() - wall0,
            "peak_rss_mib": usage.ru_maxrss / 1024, "rss_at_start_mib": rss0, "invocations": invocations,
            "entries": summary["entries"], "claim_transactions": claims.transactions, "object_gets": objects.gets}


class DynamoServer:
    """A moto server in this process for the children's DynamoDB (one table per child)."""

    def __init__(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self._tables = 0

    def table(self) -> str:
        import boto3

        aws_fixtures = load("aws_fixtures")
        self._tables += 1
        client = boto3.client("dynamodb", region_name=aws_fixtures.REGION, endpoint_url=self.url,
                              aws_access_key_id="bench", aws_secret_access_key="bench")
        return aws_fixtures.create_audit_table(client, f"bench-{self._tables}")

    def stop(self) -> None:
        self.server.stop()


#: the DynamoDB endpoint the children use (the parent's :class:`DynamoServer`)
DYNAMODB_URL = "THINGPRESS_BENCH_DYNAMODB_URL"
QUEUES = "https://sqs.us-east-1.amazonaws.com/123456789012"
_SERVER: DynamoServer | None = None


def run_child(vendor: str, path: Path, count: int, chunks: int, signer: Path | None = None) -> dict[str, Any]:
    global _SERVER
    if _SERVER is None:
        _SERVER = DynamoServer()
    args = [sys.executable, __file__, "--child", vendor, str(path), str(count), str(chunks), "--table", _SERVER.table()]
    if signer:
        args += ["--signer", str(signer)]
    env = {**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true",
           DYNAMODB_URL: _SERVER.url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    out = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if out.returncode:
        raise SystemExit(f"provider child failed ({vendor}, {count}, {chunks} chunks):\n{out.stderr[-4000:]}")
    return json.loads([line for line in out.stdout.splitlines() if line.startswith('{"bench"')][-1])["bench"]


# -- measurements --------------------------------------------------------------------------


def _overhead(vendor: str, path: Path, count: int, chunks: int, signer: Path | None = None) -> dict[str, Any]:
    print(f"{vendor}: {count:,} entries, one pass ...", flush=True)
    one = run_child(vendor, path, count, 1, signer)
    print(f"{vendor}: {count:,} entries, {chunks} chunks ...", flush=True)
    chunked = run_child(vendor, path, count, chunks, signer)
    return {"one_pass": one, "chunked": chunked, "ratio": chunked["cpu_seconds"] / one["cpu_seconds"]}


def measure_generated(big: int, chunks: int) -> dict[str, Any]:
    found = _overhead("generated", generated_manifest(big), big, chunks)
    return {"resume_overhead_generated": round(found["ratio"], 3), "peak_rss_mib_1m": round(
        found["one_pass"]["peak_rss_mib"], 1), "_generated": found}


def measure_microchip(count: int, chunks: int) -> dict[str, Any]:
    path, signer = microchip_manifest(count)
    found = _overhead("microchip", path, count, chunks, signer)
    return {"resume_overhead_microchip": round(found["ratio"], 3), "_microchip": found}


def measure_small_rss(small: int) -> dict[str, Any]:
    print(f"generated: {small:,} entries, one pass (memory) ...", flush=True)
    found = run_child("generated", generated_manifest(small), small, 1)
    return {"peak_rss_mib_10k": round(found["peak_rss_mib"], 1), "_small": found}


def derived(figures: dict[str, Any]) -> dict[str, Any]:
    """Figures computed from the measured ones: ``peak_rss_growth`` (1m over 10k, minus 1)."""
    if "peak_rss_mib_1m" in figures and "peak_rss_mib_10k" in figures:
        return {"peak_rss_growth": round(figures["peak_rss_mib_1m"] / figures["peak_rss_mib_10k"] - 1, 3)}
    return {}


def table(figures: dict[str, Any], sizes: dict[str, int]) -> str:
    g, m, s = figures["_generated"], figures["_microchip"], figures["_small"]

    def goal(figure: str) -> str:
        return goals.describe(goals.SCALE, figure)

    rows = [
        ("resume_overhead_generated",
         f"{figures['resume_overhead_generated']:.3f}",
         goal("resume_overhead_generated"),
         f"N={sizes['generated']:,}: {g['chunked']['invocations']} invocations "
         f"{g['chunked']['cpu_seconds']:.1f} s CPU / one pass {g['one_pass']['cpu_seconds']:.1f} s"),
        ("resume_overhead_microchip",
         f"{figures['resume_overhead_microchip']:.3f}",
         goal("resume_overhead_microchip"),
         f"N={sizes['microchip']:,}: {m['chunked']['invocations']} invocations "
         f"{m['chunked']['cpu_seconds']:.1f} s CPU / one pass {m['one_pass']['cpu_seconds']:.1f} s"),
        ("peak_rss_mib_1m", f"{figures['peak_rss_mib_1m']:.1f}", goal("peak_rss_mib_1m"),
         f"N={sizes['generated']:,}, one pass"),
        ("peak_rss_mib_10k", f"{figures['peak_rss_mib_10k']:.1f}", "-",
         f"N={sizes['small']:,}, one pass ({s['cpu_seconds']:.1f} s CPU)"),
        ("peak_rss_growth", f"{figures['peak_rss_growth']:+.3f}", goal("peak_rss_growth"),
         f"peak RSS at N={sizes['generated']:,} over N={sizes['small']:,}, minus 1"),
    ]
    if "fairness_default_seconds" in figures:
        rows += [
            ("fairness_default_seconds", f"{figures['fairness_default_seconds']:.1f}", goal("fairness_default_seconds"),
             f"40 certificates 5 s behind {figures['big_certificates']:,.0f} (local deployment, the defaults: "
             f"window {figures['fairness_default_window_minutes']:g} min); alone "
             f"{figures['fairness_small_alone_seconds']:.1f} s"),
            ("importer_saturation", f"{figures['importer_saturation']:.3f}", goal("importer_saturation"),
             "certificates finished per second over the same seconds / the budget"),
            ("backlog_over_window", f"{figures['backlog_over_window']:.2f}", goal("backlog_over_window"),
             f"largest import-queue depth during the fairness run / the window "
             f"({figures['window_certificates']:.0f} certificates)"),
        ]
    widths = [max(len(r[i]) for r in rows + [("figure", "value", "goal", "measured")]) for i in range(4)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(("figure", "value", "goal", "measured"), widths, strict=True))
    out = [line + " |", "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join(out)


MARKDOWN = """# Provider scale figures

Written by `make bench-scale` (`tests/benchmarks/bench_scale.py`) on {when}, {cpus} CPU cores,
load average {load:.1f} at the start.

{table}

* **Resume overhead**: CPU seconds of the provider process for the manifest in forced chunks
  (the per-invocation entry limit), over one pass. Each chunk starts from the checkpoint's cursor
  with a ranged GET: nothing before it is read or parsed again. What is left of the overhead is
  per invocation (reading the summary, opening the object) and, once per manifest, hashing the
  whole object again at the end (a chunk that started at a cursor saw only its tail).
* **Peak RSS**: `ru_maxrss` of the provider process (Python, boto3, Powertools, cryptography
  loaded) for one pass; flat in N because duplicates are found by claims in the audit table,
  not by an index in memory, and the object streams from S3.
* **What it runs against**: the provider's real code and real boto3 clients (the SDK's
  serialization, parsing and memory are in the figures); S3 answered from the manifest file
  (ranged GETs by seeking), SQS batches accepted and counted, claim transactions answered as new,
  the summary on a moto server outside the measured process (`tests/benchmarks/offline_aws.py`).
* **Noise**: each figure is one run on a machine shared with other work (load average above):
  the ratios moved by up to about 8% between runs (an earlier run on the same
  code measured 1.108 for generated and 1.033 for Microchip), so read a ratio as within that.
* Manifests: generated, {big:,} distinct certificates (one template, each with its own serial and
  CN); Microchip, {microchip:,} entries each signed with ES256 and verified on import.

* **Fairness and backlog** (`tests/benchmarks/bench_fairness.py`, on the local deployment at the
  shipped defaults, the emulator in quota mode at AWS's default IoT rates): a 40-certificate
  manifest uploaded 5 s after a 100,000-certificate one; the importer's rate meanwhile against its
  budget; the import queue's largest depth over the backpressure window. A small manifest waits
  for about one window of the large one's work: the default window is 1 minute of the budget.

Goals (issue 13, `tests/benchmarks/goals.py`; `make bench-scale` exits 1 naming any it misses):
overhead at most {goal_overhead:g} for both; peak RSS at most {goal_rss:g} MiB at N = 1,000,000 and
within {goal_growth:.0%} of the figure at N = 10,000; the small manifest within {goal_fairness:g} s, the
importer at {goal_saturation:g} of its budget or more; the backlog at most {goal_backlog:g} windows.
"""


#: the measurements, each returning a dict of figures (keys starting "_" are detail, not in the JSON).
def measure_fairness(_args: argparse.Namespace) -> dict[str, Any]:
    """``bench_fairness.measure`` on the local deployment (brought up, and down again, if not running)."""
    import bench_fairness

    from thingpress_cli.commands import local as local_cmd

    started = not local_cmd.is_up()
    local_cmd.ensure_up()
    try:
        return dict(bench_fairness.measure())
    finally:
        if started:
            local_cmd.down()


MEASUREMENTS: list[Callable[[argparse.Namespace], dict[str, Any]]] = [
    lambda a: measure_generated(a.big, a.chunks),
    lambda a: measure_microchip(a.microchip, a.microchip_chunks),
    lambda a: measure_small_rss(a.small),
    measure_fairness,
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=4, metavar=("VENDOR", "PATH", "COUNT", "CHUNKS"))
    parser.add_argument("--signer")
    parser.add_argument("--table", help="the child's audit table (on the parent's DynamoDB endpoint)")
    parser.add_argument("--quick", action="store_true", help="100,000 / 20,000 / 10,000: a smoke run")
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--microchip", type=int, default=100_000)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--microchip-chunks", type=int, default=10)
    args = parser.parse_args(argv)
    if args.child:
        vendor, path, count, chunks = args.child
        CACHE.mkdir(parents=True, exist_ok=True)
        found = child(vendor, Path(path), int(count), int(chunks), Path(args.signer) if args.signer else None, args.table)
        print(json.dumps({"bench": found}))
        return 0
    if args.quick:
        args.big, args.microchip = 100_000, 20_000
    load = os.getloadavg()[0]
    figures: dict[str, Any] = {}
    try:
        for measure in MEASUREMENTS:
            figures.update(measure(args))
    finally:
        if _SERVER is not None:
            _SERVER.stop()
    figures.update(derived(figures))
    sizes = {"generated": args.big, "microchip": args.microchip, "small": args.small}
    text = table(figures, sizes)
    print(text)
    docs = REPO / "docs"
    public = {k: v for k, v in figures.items() if not k.startswith("_")}
    public["detail"] = {k.lstrip("_"): v for k, v in figures.items() if k.startswith("_")}
    public["sizes"] = sizes
    (docs / "scale.json").write_text(json.dumps(public, indent=2, sort_keys=True) + "\n")
    (docs / "scale.md").write_text(MARKDOWN.format(
        when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), cpus=os.cpu_count(), load=load, table=text,
        big=args.big, microchip=args.microchip, goal_overhead=goals.SCALE["resume_overhead_generated"][1],
        goal_rss=goals.SCALE["peak_rss_mib_1m"][1], goal_growth=goals.SCALE["peak_rss_growth"][1],
        goal_fairness=goals.SCALE["fairness_default_seconds"][1],
        goal_saturation=goals.SCALE["importer_saturation"][1], goal_backlog=goals.SCALE["backlog_over_window"][1]))
    print("wrote docs/scale.md and docs/scale.json")
    status = goals.exit_status(figures, goals.SCALE)
    print("goals met" if status == 0 else "goals NOT met")
    return status


if __name__ == "__main__":
    sys.exit(main())
