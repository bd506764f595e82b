"""What importing a million certificates costs: a real run on the local deployment, metered and priced.

``measure(deployment, count, workdir)`` uploads a generated manifest of ``count`` certificates at the
deployment's IoT budget (the defaults: the importer paced as on AWS, so its billed duration includes
the waits), and meters everything from the upload until its summary is COMPLETE (plus a few seconds
for the last acknowledgements):

* DynamoDB write and read request units, by item kind and index (the emulator's meter,
  ``thingpress_cli.local.emulator.usage``: the developer guide's rules, transactions twice);
* SQS requests as billed (64 KB chunks), S3 requests (GET-class and PUT-class), EventBridge events;
  the receives that found no message are left out of the per-certificate figure and reported apart
  (``cost_sqs_empty_receives``): Lambda's pollers long-poll every mapped queue whether or not anything
  is imported ("Lambda uses long polling to poll a queue until it becomes active",
  https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html), a cost of the deployment
  per hour, like the watchdog's schedule; counted per certificate, the local runner's 2 s polls of
  its 14 poller slots made a 500-certificate run's idle minute 0.65 requests a certificate;
* Lambda requests and GB-seconds from the runner's ``REPORT`` lines (billed milliseconds x memory) of
  the importer and providers (the watchdog runs on its schedule whatever is imported: a fixed
  monthly cost, left out);

then prices them per certificate with :data:`PRICES` and gives ``cost_per_million_usd`` with its
breakdown. Not counted: IoT Core's own charges (registry operations), KMS requests made by the
services for their encryption (data keys are cached), data transfer, free tiers.

Storage is priced apart (``storage``: it depends on how long items are kept, not on the run): the
run's items read back after it, sized by the developer guide's rules, each kind for as long as it is
kept (rows and their index entries for the audit retention, claims for their lifetime), as
``storage_usd_per_million`` with its breakdown, and ``storage_usd_per_million_before`` with the
claims kept for the retention, as they were before.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from thingpress.audit.claims import CLAIMS_LIFETIME
from thingpress.audit.keys import INDEX_BY_STATE, INDEX_BY_THING, claims_pk, manifest_pk, to_item
from thingpress.audit.states import COMPLETE
from thingpress.audit.writes import DEFAULT_RETENTION_DAYS
from thingpress_cli.core.certificates import write_manifest
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.summaries import wait_for
from thingpress_cli.local import state
from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.local.runner.workers import billed

from goals import COST_BEFORE_USD

#: US East (N. Virginia), on-demand, as listed on 2026-12-06 (the pages below), in USD.
PRICES_DATE = "2026-12-06"
PRICES: dict[str, tuple[float, str]] = {
    # per unit, source
    "dynamodb_write_unit": (0.625 / 1e6, "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_read_unit": (0.125 / 1e6, "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_gb_month": (0.25, "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "sqs_request": (0.40 / 1e6, "https://aws.amazon.com/sqs/pricing/ (standard queue, 64 KB chunks)"),
    "s3_put_class_request": (0.005 / 1e3, "https://aws.amazon.com/s3/pricing/ (PUT, COPY, POST, LIST)"),
    "s3_get_class_request": (0.0004 / 1e3, "https://aws.amazon.com/s3/pricing/ (GET, SELECT, others)"),
    "lambda_request": (0.20 / 1e6, "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_second": (0.0000166667, "https://aws.amazon.com/lambda/pricing/ (x86)"),
    "eventbridge_event": (1.00 / 1e6, "https://aws.amazon.com/eventbridge/pricing/ (custom events)"),
}
#: the functions whose invocations an import causes (the watchdog's are on a schedule).
PIPELINE_LOGS = ("importer", "provider")
SETTLE_SECONDS = 5.0
#: SQS requests only the local runner makes (it looks its mappings' queue URLs up on every refresh; Lambda's
#: event source mappings and the functions, which get URLs from their environment, make none): not billed.
RUNNER_ONLY_SQS = ("sqs GetQueueUrl",)
S3_PUT_CLASS = ("PUT", "POST", "COPY", "LIST")


#: "Every item in DynamoDB requires 100 bytes of storage overhead for indexing" (developer guide, "DynamoDB item
#: sizes and formats", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html);
#: an entry of a global secondary index is sized as an item too: its keys, the table's and the projected attributes
#: (all of them here), plus that overhead ("Storage considerations for global secondary indexes",
#: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.StorageConsiderations).
ITEM_OVERHEAD_BYTES = 100
#: the attribute each index is keyed by: an item holding it has an entry in the index.
INDEX_KEYS = {INDEX_BY_THING: "thing_name", INDEX_BY_STATE: "state"}
DAYS_PER_MONTH = 365 / 12
GIB = 2**30


def attribute_bytes(value: dict[str, Any]) -> int:
    """The size of one typed value (``{"S": ...}``) by the developer guide's rules, its name not included."""
    (kind, data), = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        digits = data.lstrip("-").replace(".", "").strip("0")
        return -(-len(digits) // 2) + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(attribute_bytes(v) + 1 for v in data)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_bytes(v) + 1 for k, v in data.items())
    if kind in ("SS", "BS"):
        return sum(attribute_bytes({kind[0]: v}) for v in data)
    if kind == "NS":
        return sum(attribute_bytes({"N": v}) for v in data)
    raise ValueError(f"no size rule for DynamoDB type {kind}")


def item_bytes(item: dict[str, dict[str, Any]]) -> int:
    """A stored item's billed size: its attributes' names and values plus the per-item overhead."""
    return ITEM_OVERHEAD_BYTES + sum(len(name.encode()) + attribute_bytes(v) for name, v in item.items())


def storage(deployment: Deployment, mid: str, count: int, *, retention_days: int = DEFAULT_RETENTION_DAYS) -> dict[str, Any]:
    """What keeping a run's items costs, per million certificates: each kind's bytes for as long as it is kept."""
    client, table = deployment.client("dynamodb"), deployment.outputs.audit_table_name
    sizes: dict[str, int] = {}
    for kind, pk in (("rows", manifest_pk(mid)), ("claims", claims_pk(mid))):
        pages = client.get_paginator("query").paginate(
            TableName=table, ConsistentRead=True, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_item({":pk": pk}))
        for item in (i for page in pages for i in page["Items"]):
            size = item_bytes(item)
            sizes[kind] = sizes.get(kind, 0) + size
            for index, key in INDEX_KEYS.items():
                if key in item:
                    sizes[f"index {index}"] = sizes.get(f"index {index}", 0) + size
    kept_days = {kind: CLAIMS_LIFETIME.days if kind == "claims" else retention_days for kind in sizes}

    def usd(days: dict[str, int]) -> dict[str, float]:
        return {kind: sizes[kind] / count * 1e6 / GIB * days[kind] / DAYS_PER_MONTH * PRICES["dynamodb_gb_month"][0]
                for kind in sizes}

    now, before = usd(kept_days), usd(dict.fromkeys(sizes, retention_days))
    return {
        "storage_bytes_per_certificate": {kind: round(size / count, 1) for kind, size in sorted(sizes.items())},
        "storage_days_kept": kept_days,
        "storage_usd_per_million": round(sum(now.values()), 2),
        "storage_usd_per_million_before": round(sum(before.values()), 2),
        "storage_usd_per_million_breakdown": {k: round(v, 3) for k, v in sorted(now.items(), key=lambda kv: -kv[1])},
    }


def _log_offsets(logs: Path) -> dict[Path, int]:
    return {path: path.stat().st_size for path in logs.glob("*.log")}


def _new_lines(offsets: dict[Path, int], logs: Path) -> list[str]:
    lines: list[str] = []
    for path in logs.glob("*.log"):
        if not any(part in path.name for part in PIPELINE_LOGS):
            continue
        with path.open("rb") as log:
            log.seek(offsets.get(path, 0))
            lines += log.read().decode(errors="replace").splitlines()
    return lines


def _s3_requests(report: dict[str, Any]) -> tuple[int, int]:
    put = get = 0
    for name, n in report["requests"].items():
        service, _, operation = name.partition(" ")
        if service != "s3":
            continue
        if operation.split(" ", 1)[0] in S3_PUT_CLASS or "uploads" in operation:
            put += n
        else:
            get += n
    return put, get


def price(units: dict[str, float]) -> dict[str, float]:
    """USD for ``units`` (per-unit counts keyed as :data:`PRICES`)."""
    return {name: units[name] * PRICES[name][0] for name in units}


def measure(deployment: Deployment, count: int, workdir: Path, logs: Path | None = None) -> dict[str, Any]:
    """One metered import of ``count`` generated certificates; the figures per certificate and per million."""
    logs = logs or state.LOG_DIR
    manifest = workdir / f"cost-{uuid.uuid4().hex[:8]}.txt"
    write_manifest(manifest, count, prefix=f"Cost-{uuid.uuid4().hex[:8]}-")
    url = deployment.outputs.endpoint_url
    offsets = _log_offsets(logs)
    emulator.usage_report(url, reset=True)
    uploaded = deployment.upload(manifest)
    row = wait_for(deployment, uploaded.manifest_id, timeout=max(600.0, count / 2), show_progress=False)
    assert row["state"] == COMPLETE and row["imported"] == count, row
    time.sleep(SETTLE_SECONDS)
    report = emulator.usage_report(url)
    invocations, gb_seconds = billed(_new_lines(offsets, logs))
    ddb = report["dynamodb"]
    put_class, get_class = _s3_requests(report)
    units = {
        "dynamodb_write_unit": sum(ddb["write_units"].values()) + sum(ddb["index_write_units"].values()),
        "dynamodb_read_unit": sum(ddb["read_units"].values()),
        "sqs_request": (report["sqs_billed_requests"] - report["sqs_empty_receives"]
                        - sum(report["requests"].get(r, 0) for r in RUNNER_ONLY_SQS)),
        "s3_put_class_request": put_class,
        "s3_get_class_request": get_class,
        "lambda_request": invocations,
        "lambda_gb_second": gb_seconds,
        # PutEvents only (one event per completed manifest): the runner's own ListRules polls are not events
        "eventbridge_event": report["requests"].get("events PutEvents", 0),
    }
    per_million = {name: usd / count * 1e6 for name, usd in price(units).items()}
    kept = storage(deployment, uploaded.manifest_id, count)
    writes_by_kind = {**{f"table {k}": v for k, v in ddb["write_units"].items()},
                      **{f"index {k}": v for k, v in ddb["index_write_units"].items()}}
    return {
        "cost_certificates": count,
        "cost_per_million_usd": round(sum(per_million.values()), 2),
        "cost_per_million_usd_before": COST_BEFORE_USD,
        "cost_per_million_breakdown_usd": {k: round(v, 3) for k, v in sorted(per_million.items(), key=lambda kv: -kv[1])},
        "cost_units_per_certificate": {k: round(v / count, 4) for k, v in units.items()},
        "cost_write_units_per_certificate_by_kind": {k: round(v / count, 3) for k, v in
                                                     sorted(writes_by_kind.items(), key=lambda kv: -kv[1])},
        "cost_sqs_empty_receives": report["sqs_empty_receives"],
        **kept,
        "cost_prices_date": PRICES_DATE,
        "cost_prices": {k: {"usd": v, "source": s} for k, (v, s) in PRICES.items()},
    }


def table(figures: dict[str, Any]) -> str:
    """The breakdown as a markdown table (USD per 1,000,000 certificates)."""
    rows = ["| item | units per certificate | USD per million certificates |", "|---|---|---|"]
    units = figures["cost_units_per_certificate"]
    for name, usd in sorted(figures["cost_per_million_breakdown_usd"].items(), key=lambda item: -item[1]):
        rows.append(f"| {name} | {units[name]:g} | {usd:.3f} |")
    rows.append(f"| **total** | | **{figures['cost_per_million_usd']:.2f}** |")
    return "\n".join(rows)


def storage_lines(figures: dict[str, Any]) -> list[str]:
    """The storage figures for docs/benchmarks.md (none when the run measured none)."""
    if "storage_usd_per_million" not in figures:
        return []
    days = figures["storage_days_kept"]
    return ["Storage, priced apart (it depends on how long items are kept, not on the run): the run's items read back "
            "and sized by the developer guide's rules (100 bytes of overhead an item and an index entry), each kind "
            f"for as long as it is kept: **{figures['storage_usd_per_million']:.2f} USD per million certificates** "
            f"(claims {days['claims']} days, the rest {days['rows']} days; with the claims kept "
            f"{days['rows']} days, as before: {figures['storage_usd_per_million_before']:.2f} USD).", "",
            "| kind | bytes per certificate | days kept | USD per million certificates |", "|---|---|---|---|",
            *(f"| {kind} | {figures['storage_bytes_per_certificate'][kind]:g} | {days[kind]} | {usd:.3f} |"
              for kind, usd in figures["storage_usd_per_million_breakdown"].items()), ""]


def main(argv: list[str] | None = None) -> int:
    """One metered run on a fresh local deployment at the defaults (what ``make bench`` does in its
    local phase), printed; ``--write`` merges the figures into docs/benchmarks.json and .md."""
    import argparse
    import json
    import tempfile

    import run_all
    from bench_pipeline import set_budget

    from stacks.naming import DEFAULT_ENV
    from thingpress.settings import DEFAULT_IOT_TPS
    from thingpress_cli.commands import local as local_cmd

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cost-count", type=int, default=500, help="certificates in the metered run")
    parser.add_argument("--write", action="store_true",
                        help="merge the figures into docs/benchmarks.json and regenerate docs/benchmarks.md")
    parser.add_argument("--keep", action="store_true", help="leave the local environment up")
    args = parser.parse_args(argv)
    local_cmd.ensure_up()
    deployment = Deployment.load(suffix=DEFAULT_ENV)
    set_budget(deployment, dict(DEFAULT_IOT_TPS))
    figures = measure(deployment, args.cost_count, Path(tempfile.mkdtemp(prefix="thingpress-cost-")))
    if not args.keep:
        local_cmd.down()
    print(json.dumps({k: v for k, v in figures.items() if k != "cost_prices"}, indent=2))
    print(table(figures))
    print("\n".join(storage_lines(figures)))
    if args.write:
        path = run_all.DOCS / "benchmarks.json"
        merged = {**json.loads(path.read_text()), **figures}
        path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
        (run_all.DOCS / "benchmarks.md").write_text(run_all.markdown(merged))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
