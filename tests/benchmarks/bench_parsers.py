"""Parser benchmark: throughput per vendor and peak memory on a 100,000-certificate manifest.

Run: ``.venv/bin/python tests/benchmarks/bench_parsers.py [--count 10000] [--big 100000]``

1. Builds a 10,000-certificate manifest in each vendor format (one test CA; the
   Microchip one signed entry by entry with a test ES256 signer; the Infineon one
   as a reel with an inner E0E0 archive) and times ``parse_manifest`` + ``scan``
   over it, exactly the path the provider and ``thingpress inspect`` take.
   Goals: generated and Espressif >= 5,000 certificates/s, Microchip >= 1,000/s
   including the signature checks.
2. Writes a 100,000-certificate generated manifest with ``thingpress_cli.core.certificates``
   (timed: the generator must not take minutes) and parses it from disk under
   in a fresh process (max RSS) and under ``tracemalloc``: the peak must stay
   bounded (streaming, fingerprints only).
"""

from __future__ import annotations

import argparse
import io
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from offline_aws import load

from thingpress.manifest import Tally, scan
from thingpress.vendors import ParseOptions, parse_manifest
from thingpress_cli.core.certificates import device_certificates, make_ca, write_manifest




factories = load("factories")

GOALS = {"generated": 5000, "espressif": 5000, "microchip": 1000, "infineon": None}


def build(count: int) -> tuple[dict[str, bytes], object]:
    ca = make_ca()
    devs = list(device_certificates(ca, count))
    signer = factories.microchip_signer()
    started = time.perf_counter()
    manifests = {
        "generated": factories.generated_manifest(devs),
        "espressif": factories.espressif_manifest(factories.espressif_rows(devs)),
        "microchip": factories.microchip_manifest(
            factories.microchip_entry(signer, factories.microchip_unique_id(i), d) for i, d in enumerate(devs)),
        "infineon": factories.infineon_reel({"E0E0": devs}),
    }
    print(f"built {count:,}-certificate manifests in 4 formats in {time.perf_counter() - started:.1f} s")
    return manifests, signer


def throughput(vendor: str, data: bytes, options: ParseOptions, rounds: int) -> tuple[float, float, Tally]:
    """(wall rate, CPU rate, tally); best of ``rounds``. The CPU rate does not suffer
    from other processes sharing the cores; the wall rate is what a Lambda would see alone."""
    best_wall = best_cpu = float("inf")
    tally = Tally()
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        tally = Tally(max_errors=10).count(scan(parse_manifest(vendor, io.BytesIO(data), options)))
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return tally.entries / best_wall, tally.entries / best_cpu, tally


def _high_water_kib() -> int:
    """This process's peak RSS (VmHWM, reset by exec unlike ru_maxrss, which a child inherits)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_parse(path: Path) -> None:
    """Child process: parse ``path`` once plain (timed, max RSS) and once under tracemalloc."""
    baseline = _high_water_kib()
    started, cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as stream:
        tally = Tally(max_errors=10).count(scan(parse_manifest("generated", stream, ParseOptions())))
    plain = time.perf_counter() - started
    cpu = time.process_time() - cpu
    rss = _high_water_kib()
    tracemalloc.start()
    with path.open("rb") as stream:
        Tally(max_errors=10).count(scan(parse_manifest("generated", stream, ParseOptions())))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = path.stat().st_size
    print(f"parsed {tally.entries:,} entries from disk ({tally.accepted:,} accepted) in {plain:.1f} s "
          f"({tally.entries / plain:,.0f} certificates/s wall, {tally.entries / cpu:,.0f} per CPU second)")
    print(f"peak Python memory while parsing (tracemalloc): {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB file")
    print(f"fresh process max RSS: {rss / 1024:.0f} MiB ({baseline / 1024:.0f} MiB after imports, "
          f"+{(rss - baseline) / 1024:.0f} MiB for the parse)")


def peak_memory(big: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.txt"
        started, cpu = time.perf_counter(), time.process_time()
        write_manifest(path, big)
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"generated {big:,} certificates ({path.stat().st_size / 2**20:.0f} MiB) in {took:.1f} s "
              f"({cpu:.1f} CPU s, {big / took:,.0f} certificates/s)")
        sys.stdout.flush()
        subprocess.run([sys.executable, __file__, "--parse-only", str(path)], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="certificates per throughput manifest")
    parser.add_argument("--big", type=int, default=100_000, help="certificates in the peak-memory manifest")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per vendor (best is kept)")
    parser.add_argument("--parse-only", type=Path, metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.parse_only:
        measure_parse(args.parse_only)
        return 0
    manifests, signer = build(args.count)
    options = ParseOptions(microchip_signers=(signer.certificate,))
    print(f"{'vendor':<10} {'entries':>8} {'accepted':>8} {'wall c/s':>9} {'cpu c/s':>9}  goal (on CPU rate)")
    ok = True
    for vendor, data in manifests.items():
        rate, cpu_rate, tally = throughput(vendor, data, options, args.rounds)
        goal = GOALS[vendor]
        verdict = "-" if goal is None else (f">= {goal:,} ok" if cpu_rate >= goal else f">= {goal:,} MISSED")
        ok &= goal is None or cpu_rate >= goal
        print(f"{vendor:<10} {tally.entries:>8,} {tally.accepted:>8,} {rate:>9,.0f} {cpu_rate:>9,.0f}  {verdict}")
    peak_memory(args.big)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
