"""Parser benchmark: throughput per vendor and peak memory on a 100,000-certificate manifest.

Run: ``.venv/bin/python tests/benchmarks/bench_parsers.py [--count 10000] [--big 100000]``

1. Builds a 10,000-certificate manifest in each vendor format (one test CA; the
   Microchip one signed entry by entry with a test ES256 signer; the Infineon one
   as a reel with an inner E0E0 archive) and times ``parse_manifest`` + ``scan``
   over it, exactly the path the provider and ``thingpress inspect`` take.
   Goals: generated and Espressif >= 5,000 certificates/s, Microchip >= 1,000/s
   including the signature checks.
2. Writes a 100,000-certificate generated manifest with ``thingpress_cli.generate``
   (timed: the generator must not take minutes) and parses it from disk under
   ``tracemalloc``: the peak must stay bounded (streaming, fingerprints only).
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

# tests/ holds the shared manifest factories (as for pytest, which puts it on sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import factories  # noqa: E402

from thingpress.manifest import Tally, scan  # noqa: E402
from thingpress.vendors import ParseOptions, parse_manifest  # noqa: E402
from thingpress_cli.generate import device_certificates, make_ca, write_manifest  # noqa: E402

GOALS = {"generated": 5000, "espressif": 5000, "microchip": 1000, "infineon": None}


def build(count: int) -> tuple[dict[str, bytes], factories.MicrochipSigner]:
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


def throughput(vendor: str, data: bytes, options: ParseOptions, rounds: int) -> tuple[float, Tally]:
    best = float("inf")
    tally = Tally()
    for _ in range(rounds):
        started = time.perf_counter()
        tally = Tally(max_errors=10).count(scan(parse_manifest(vendor, io.BytesIO(data), options)))
        best = min(best, time.perf_counter() - started)
    return tally.entries / best, tally


def peak_memory(big: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.txt"
        started = time.perf_counter()
        write_manifest(path, big)
        took = time.perf_counter() - started
        size = path.stat().st_size
        print(f"generated {big:,} certificates ({size / 2**20:.0f} MiB) in {took:.1f} s "
              f"({big / took:,.0f} certificates/s)")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        with path.open("rb") as stream:
            tally = Tally(max_errors=10).count(scan(parse_manifest("generated", stream, ParseOptions())))
        plain = time.perf_counter() - started
        tracemalloc.start()
        with path.open("rb") as stream:
            tally = Tally(max_errors=10).count(scan(parse_manifest("generated", stream, ParseOptions())))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"parsed {tally.entries:,} entries from disk ({tally.accepted:,} accepted) in {plain:.1f} s "
              f"({tally.entries / plain:,.0f} certificates/s)")
        print(f"peak Python memory while parsing (tracemalloc): {peak / 2**20:.1f} MiB "
              f"(the file is {size / 2**20:.0f} MiB; the duplicate index holds 32-byte digests)")
        print(f"process max RSS: {rss_after / 1024:.0f} MiB (grew by {(rss_after - rss_before) / 1024:.0f} MiB "
              "during the two parses)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="certificates per throughput manifest")
    parser.add_argument("--big", type=int, default=100_000, help="certificates in the peak-memory manifest")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per vendor (best is kept)")
    args = parser.parse_args()
    manifests, signer = build(args.count)
    options = ParseOptions(microchip_signers=(signer.certificate,))
    print(f"{'vendor':<10} {'entries':>8} {'accepted':>8} {'certs/s':>9}  goal")
    ok = True
    for vendor, data in manifests.items():
        rate, tally = throughput(vendor, data, options, args.rounds)
        goal = GOALS[vendor]
        verdict = "-" if goal is None else (f">= {goal:,} ok" if rate >= goal else f">= {goal:,} MISSED")
        ok &= goal is None or rate >= goal
        print(f"{vendor:<10} {tally.entries:>8,} {tally.accepted:>8,} {rate:>9,.0f}  {verdict}")
    peak_memory(args.big)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
