"""``thingpress demo`` (``make demo``): the main job, end to end, on the local emulator.

Brings the local environment up (emulator, real ``cdktf deploy``, runner),
generates a fresh generated-format manifest, uploads it together with the real
vendor samples (or generated stand-ins when the samples are absent), shows
progress, prints per-vendor results and says how to look further and tear down.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from stacks.naming import DEFAULT_ENV
from thingpress_cli.core import hints, samples
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.progress import short_id
from thingpress_cli.core.streams import print_json, progress_on_stderr, warn
from thingpress_cli.core.summaries import print_table, summary_view, wait_all
from thingpress_cli.core.toolchain import REPO

DEMO_DIR = REPO / "build" / "demo"


def demo_files(count: int) -> list[tuple[Path, str]]:
    """(file, label) pairs to upload: a fresh generated manifest plus the real samples."""
    from thingpress_cli.core.certificates import write_manifest

    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    fresh = DEMO_DIR / f"fresh-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    write_manifest(fresh, count=count, prefix=f"Demo-{time.strftime('%H%M%S')}-")
    files = [(fresh, f"fresh generated ({count})")]
    base = samples.samples_dir()
    if base is None:
        warn(f"vendor samples not found at {samples.configured_dir()}: uploading the fresh manifest only")
        return files
    files += [(base / name, f"{vendor}: {name}") for name, vendor in samples.SAMPLES.items() if (base / name).is_file()]
    return files


def print_results(results: list[tuple[str, dict]]) -> None:
    """One line per uploaded manifest: what it held and how each certificate ended."""
    from rich import box
    from rich.table import Table

    # fits 80 columns: labels are cut, and notes too long for their column are printed in full under it
    table = Table(title="thingpress demo: results per manifest", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, padding=(0, 0), expand=True)
    table.add_column("manifest", no_wrap=True, overflow="ellipsis", max_width=28)
    table.add_column("state", no_wrap=True)
    for name in ("total", "imported", "present", "rejected", "failed"):
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    table.add_column("note", no_wrap=True, overflow="ellipsis", ratio=1, min_width=4)
    for label, row in results:
        table.add_row(label, row.get("state", ""), *(str(row.get(k, 0)) for k in
                      ("entries", "imported", "already_present", "rejected", "failed")),
                      row.get("reason") or row.get("note") or "")
    # a cut note is printed under the table after the short id (what status, report, rollback take), else the label
    print_table(table, len(table.columns) - 1,
                [short_id(row["manifest_id"]) if row.get("manifest_id") else label for label, row in results])


def run(args: argparse.Namespace) -> int:
    from thingpress_cli.commands.local import ensure_up

    started = time.monotonic()
    with progress_on_stderr(args.json):
        endpoint = ensure_up()
        deployment = Deployment.load(suffix=DEFAULT_ENV)
        files = demo_files(args.count)
        uploads = {}
        for path, label in files:
            uploaded = deployment.upload(path)
            uploads[uploaded.manifest_id] = (label, uploaded)
            print(f"uploaded {label} -> s3://{uploaded.bucket}/{uploaded.key}")
        rows = wait_all(deployment, list(uploads), timeout=args.timeout, show_progress=not args.json,
                        labels={mid: label for mid, (label, _) in uploads.items()})
    finished = all(r.get("state") in ("COMPLETE", "REFUSED") for r in rows.values())
    if args.json:
        print_json({"endpoint": endpoint, "seconds": round(time.monotonic() - started, 1),
                    "manifests": [{"label": label, **summary_view(rows[mid])} for mid, (label, _) in uploads.items()]})
        return 0 if finished else 1
    print_results([(label, rows[mid]) for mid, (label, _) in uploads.items()])
    tp = hints.thingpress()
    first = short_id(next(iter(uploads)))
    print(f"\nDone in {time.monotonic() - started:.0f} s. Look further:")
    print(f"  {tp} status                   # every manifest (short ids work everywhere)")
    print(f"  {tp} report {first}   # every certificate's outcome and reason")
    print(f"  {tp} reconcile --all          # the registry still as imported?")
    if hints.available("aws"):
        print(f"  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws --endpoint-url {endpoint} iot list-things")
    print("Tear down: " + ("make local-down" if hints.available("make") else f"{tp} local down"))
    return 0 if finished else 1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="the whole pipeline on the local emulator with the real vendor samples",
                            description="Bring the local cloud up, upload a fresh generated manifest and the "
                                        "vendor samples, show their progress and results per manifest.")
    parser.add_argument("--count", type=int, default=50,
                        help="certificates in the fresh generated manifest (default 50)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds to wait for the manifests to finish (default 600)")
    parser.add_argument("--json", action="store_true",
                        help="progress on stderr, then one JSON document: each manifest's summary")
    parser.set_defaults(func=run)
