"""Synth time and its overhead over the bare provider-binding import.

Each repetition is a fresh interpreter that (1) imports the provider bindings the
stack uses, by submodule as the app does (``stacks.bindings``: the provider's assembly
and ten of its resources), then (2) builds and synthesizes thingpress-dev into a temp folder;
both phases are timed in the same process, so the overhead is what our code adds
to the unavoidable jsii load. Prints every run, the median and the spread.

    .venv/bin/python tests/benchmarks/bench_synth.py [repetitions] [--figures FILE]   # default 5
Goal (``goals.SYNTH``): overhead (construct + synth) at most 1.5 s, median. ``--figures FILE`` writes
``synth_overhead_seconds`` and ``synth_seconds`` (the median total) there; a missed goal exits 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import goals

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import cdktf
import stacks
from cdktf_cdktf_provider_aws import (provider, sqs_queue, s3_bucket, lambda_function, dynamodb_table, kms_key,
    iam_role, iot_policy, cloudwatch_metric_alarm, sns_topic)
t1 = time.perf_counter()
from stacks.config import StackConfig
from stacks.stack import ThingpressStack
app = cdktf.App(outdir=sys.argv[1])
ThingpressStack(app, StackConfig.from_env({"THINGPRESS_ENV": "dev", "THINGPRESS_BACKEND": "local"}))
t2 = time.perf_counter()
app.synth()
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "construct": t2 - t1, "synth": t3 - t2}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=int, nargs="?", default=5)
    parser.add_argument("--figures", type=Path, default=None, help="write the judged figures to this JSON file")
    args = parser.parse_args(argv)
    runs = args.runs
    # Warm the artifact caches (layer deps and zips) so runs measure synth, not pip.
    subprocess.run([sys.executable, "-m", "stacks.packaging"], cwd=REPO, check=True, capture_output=True)
    rows = []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run([sys.executable, "-c", CHILD, out], cwd=REPO, capture_output=True, text=True,
                                  check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["overhead"] = row["construct"] + row["synth"]
        rows.append(row)
        print(f"run {i + 1}: provider import {row['import']:.2f} s, construct {row['construct']:.2f} s, "
              f"synth {row['synth']:.2f} s, overhead {row['overhead']:.2f} s")
    for key in ("import", "overhead"):
        values = [r[key] for r in rows]
        print(f"{key}: median {statistics.median(values):.2f} s, min {min(values):.2f} s, max {max(values):.2f} s, "
              f"spread {max(values) - min(values):.2f} s")
    total = [r["import"] + r["overhead"] for r in rows]
    print(f"total synth: median {statistics.median(total):.2f} s")
    figures = {"synth_overhead_seconds": round(statistics.median(r["overhead"] for r in rows), 2),
               "synth_seconds": round(statistics.median(total), 2)}
    print(f"overhead median {figures['synth_overhead_seconds']:.2f} s "
          f"(goal {goals.describe(goals.SYNTH, 'synth_overhead_seconds')} s)")
    if args.figures is not None:
        args.figures.write_text(json.dumps(figures, sort_keys=True))
    return goals.exit_status(figures, goals.SYNTH)


if __name__ == "__main__":
    raise SystemExit(main())
