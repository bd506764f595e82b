"""``thingpress status`` at an audit table of 1,000,000 certificate rows: seconds per answer (issue 25).

The local cloud's DynamoDB (moto, with the emulator's one patch set: :func:`.patches.apply`), in
this process (``mock_aws``). The table is filled as the pipeline leaves it after five manifests of
200,000 certificates (``--rows`` in all): each certificate's outcome row (``M#<id>``/``C#<fingerprint>``,
with the ``by_thing`` attributes) and claim (``D#<id>``/``<fingerprint>``), each manifest's summary
and its 16 shards, and ``OTHERS`` more manifest summaries (with shards, and the starts of the
unfinished ones) in every state. The items are put straight into moto's table (a million
requests would take an hour), but their shapes are the pipeline's own: one small manifest per
state is written first through ``thingpress.audit.AuditTable`` (start, checkpoints, claims,
outcomes, completion, refusal, stall), and every item put is a copy of one of those with its keys
and values changed (same attribute names, same types).

Then ``thingpress status`` runs as the operator runs it (``thingpress_cli.main.main``: the parser,
``Deployment`` from an outputs file, its boto3 clients, the table printed), ``--runs`` times; the
figure is the median (``status_seconds_1m``), next to the first run's (which builds the
emulator's per-partition order and index maps: :mod:`.query_range`), the id lookup (``status
<short id>``) and ``status --json``. A ``Scan`` during any of them fails the run (``status`` reads
the ``by_state`` index and each manifest's own key range only). Prints the figures as JSON;
``--figures FILE`` writes ``status_seconds_1m`` and ``status_rows`` there. Exits 1 when a goal is
missed (``goals.STATUS``: at most 2 s).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import goals
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

from stacks import outputs as contract
from stacks.naming import PROJECT, VENDORS
from thingpress.audit.keys import (
    INDEX_BY_STATE,
    INDEX_BY_THING,
    STARTS_PK,
    SUMMARY_SK,
    certificate_sk,
    claims_pk,
    manifest_id,
    manifest_pk,
    shard_sk,
)
from thingpress.audit.outcomes import OutcomeRecord
from thingpress.audit.states import COMPLETE, IMPORTED, MANIFEST_STATES, PARSING, QUEUED, RECEIVED, REFUSED, STALLED
from thingpress.audit.summaries import SUMMARY_SHARDS, Progress
from thingpress.audit.table import AuditTable
from thingpress_cli.core.progress import short_id
from thingpress_cli.local.emulator import patches

ROWS = 1_000_000
BIG_MANIFESTS = 5
#: other manifests, summaries only (their rows expired): spread over every state.
OTHERS = 300
RUNS = 5
REGION = "us-east-1"
SUFFIX = "bench"
TABLE = "thingpress-bench-audit"
VENDOR = "generated"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
               "AWS_DEFAULT_REGION": REGION}


# -- the table ------------------------------------------------------------------------------


def create_table(client: Any) -> None:
    """The audit table as the stack declares it (``stacks.constructs.audit_table``): pk/sk, by_thing, by_state."""
    indexes = ((INDEX_BY_THING, "thing_name"), (INDEX_BY_STATE, "state"))
    client.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"}
                              for name in ("pk", "sk", "thing_name", "state", "updated_at")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": name,
                                 "KeySchema": [{"AttributeName": key, "KeyType": "HASH"},
                                               {"AttributeName": "updated_at", "KeyType": "RANGE"}],
                                 "Projection": {"ProjectionType": "ALL"}} for name, key in indexes])


def moto_table() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[TABLE]


def string(value: str) -> DynamoType:
    return DynamoType({"S": value})


def number(value: int) -> DynamoType:
    return DynamoType({"N": str(value)})


def fingerprint(mid: str, position: int) -> str:
    return hashlib.sha256(f"{mid}\n{position}".encode()).hexdigest()


def write_probes(table: AuditTable) -> dict[str, str]:
    """One small manifest per state, written by the pipeline's own code; state -> its manifest id."""
    probes: dict[str, str] = {}
    for state in MANIFEST_STATES:
        mid = manifest_id(VENDOR, "bench", f"probe-{state}.csv", "v1")
        table.start_manifest(mid, vendor=VENDOR, bucket="bench", key=f"generated/probe-{state}.csv",
                             version="v1", etag="e", size=100, environment=SUFFIX)
        probes[state] = mid
        if state == RECEIVED:
            continue
        if state == REFUSED:
            table.refuse_manifest(mid, "s3://bench/generated/probe.csv (version v1): not a manifest")
            continue
        fps = [(fingerprint(mid, p), p) for p in (1, 2, 3)]
        table.claim_certificates(mid, fps)
        done = state in (COMPLETE, QUEUED, STALLED)
        table.checkpoint(mid, 3, Progress(entries=3, queued=3), state=QUEUED if done else PARSING,
                         parse_done=done, sha256="0" * 64, previous=0)
        recorded = fps if state == COMPLETE else fps[:1]
        table.record_outcomes([OutcomeRecord(mid, fp, IMPORTED, vendor=VENDOR, position=p, thing_name=f"probe-{p}",
                                             certificate_id=fp, attempts=1, environment=SUFFIX,
                                             certificate_registered=True, thing_created=True)
                               for fp, p in recorded])
        if state == COMPLETE:
            table.try_complete(mid)
        if state == STALLED:
            summary, shards = table.summary_items(mid)
            assert summary is not None
            table.mark_stalled(mid, "parsed, but 2 of 3 entries have no outcome", seen=summary, seen_shards=shards)
    for state, mid in probes.items():
        got = table.get_summary(mid)
        assert got is not None and got["state"] == state, (state, got)
    return probes


class Filler:
    """Items put straight into moto's table, each a copy of a probe's item with keys and values changed."""

    def __init__(self, table: Any, probes: dict[str, str]) -> None:
        self.table = table
        self.probes = probes
        self.shared: dict[tuple[str, str], DynamoType] = {}

    def item(self, pk: str, sk: str) -> Item:
        """An item as stored (a probe's)."""
        return self.table.items[string(pk)][string(sk)]

    def value(self, kind: str, value: Any) -> DynamoType:
        """One DynamoType per repeated value (vendor, states, stamps...): a million rows share them."""
        key = (kind, value if kind != "BOOL" else str(value))
        found = self.shared.get(key)
        if found is None:
            found = self.shared[key] = DynamoType({kind: value})
        return found

    def copy(self, like: Item, changes: dict[str, DynamoType]) -> Item:
        """``like`` with ``changes`` (same attribute names and types), as moto stores it."""
        for name, value in changes.items():
            if like.attrs[name].type != value.type:
                raise AssertionError(f"{name}: {value.type}, the pipeline writes {like.attrs[name].type}")
        attrs = LimitedSizeDict.__new__(LimitedSizeDict)  # as moto's Item.__deepcopy__ makes one
        dict.__init__(attrs)
        dict.update(attrs, like.attrs)
        dict.update(attrs, changes)
        item = Item.__new__(Item)
        item.hash_key, item.range_key, item.attrs = attrs["pk"], attrs["sk"], attrs
        return item

    def put_partition(self, pk: DynamoType, items: Iterator[Item]) -> int:
        """Put a partition's items (one update of moto's partition); how many."""
        batch = {item.range_key: item for item in items}
        self.table.items[pk].update(batch)
        return len(batch)


def fill(filler: Filler, rows: int, big: int = BIG_MANIFESTS, others: int = OTHERS) -> dict[str, int]:
    """``rows`` certificates over ``big`` manifests (outcome rows and claims), their summaries and shards,
    and ``others`` manifests' summaries and shards in every state; item counts by kind."""
    probes = filler.probes
    complete = probes[COMPLETE]
    outcome = filler.item(manifest_pk(complete), certificate_sk(fingerprint(complete, 1)))
    claim = filler.item(claims_pk(complete), fingerprint(complete, 1))
    counts = {"outcome rows": 0, "claims": 0, "summaries": 0, "shards": 0, "starts": 0}
    per_manifest = [rows // big + (1 if n < rows % big else 0) for n in range(big)]
    stamp = filler.value("S", "2026-12-01T00:00:00Z")
    for n, certificates in enumerate(per_manifest):
        mid = manifest_id(VENDOR, "bench", f"generated/big-{n}.csv", "v1")
        mid_value, pk, dpk = (filler.value("S", v) for v in (mid, manifest_pk(mid), claims_pk(mid)))

        def outcomes(mid: str = mid, certificates: int = certificates) -> Iterator[Item]:
            for position in range(1, certificates + 1):
                fp = fingerprint(mid, position)
                fp_value = string(fp)
                yield filler.copy(outcome, {
                    "pk": pk, "sk": string(certificate_sk(fp)), "manifest_id": mid_value, "position": number(position),
                    "thing_name": string(f"bench-{n}-{position:07d}"), "fingerprint": fp_value,
                    "certificate_id": fp_value, "updated_at": stamp})

        def claims(mid: str = mid, certificates: int = certificates) -> Iterator[Item]:
            for position in range(1, certificates + 1):
                yield filler.copy(claim, {"pk": dpk, "sk": string(fingerprint(mid, position)),
                                          "position": number(position)})

        counts["outcome rows"] += filler.put_partition(pk, outcomes())
        counts["claims"] += filler.put_partition(dpk, claims())
        counts.update({k: counts[k] + v for k, v in summary(filler, COMPLETE, mid, certificates, n).items()})
    states = list(MANIFEST_STATES)
    for n in range(others):
        state = states[n % len(states)] if n % 3 else COMPLETE  # most manifests are done
        mid = manifest_id(VENDOR, "bench", f"generated/other-{n}.csv", "v1")
        made = summary(filler, state, mid, 40 + n, BIG_MANIFESTS + n)
        counts.update({k: counts[k] + v for k, v in made.items()})
    return counts


def summary(filler: Filler, state: str, mid: str, certificates: int, n: int) -> dict[str, int]:
    """A manifest's summary and shards (and start, when unfinished) like the ``state`` probe's."""
    probe = filler.probes[state]
    summary_like = filler.item(manifest_pk(probe), SUMMARY_SK)
    pk = filler.value("S", manifest_pk(mid))
    started = f"2026-12-01T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
    changes = {"pk": pk, "sk": filler.value("S", SUMMARY_SK), "manifest_id": filler.value("S", mid),
               "key": filler.value("S", f"generated/manifest-{n}.csv"), "started_at": filler.value("S", started),
               "updated_at": filler.value("S", started)}
    done = state in (COMPLETE, QUEUED, STALLED)
    for counter, value in (("entries", certificates), ("queued", certificates), ("outstanding", certificates),
                           ("checkpoint", certificates)):
        if counter in summary_like.attrs and state not in (RECEIVED, REFUSED):
            changes[counter] = number(value)
    items = [filler.copy(summary_like, changes)]
    shard_like = next((item for sk, item in filler.table.items[string(manifest_pk(probe))].items()
                       if sk.value.startswith("#SHARD#")), None)
    if shard_like is not None and done:
        finished = certificates if state == COMPLETE else certificates // 2
        for shard in range(SUMMARY_SHARDS):
            share = finished // SUMMARY_SHARDS + (1 if shard < finished % SUMMARY_SHARDS else 0)
            items.append(filler.copy(shard_like, {
                "pk": pk, "sk": filler.value("S", shard_sk(shard)), "imported": number(share),
                "outstanding": number(-share), "updated_at": filler.value("S", started)}))
    counts = {"summaries": 1, "shards": len(items) - 1, "starts": 0}
    filler.put_partition(pk, iter(items))
    probe_start = filler.item(manifest_pk(probe), SUMMARY_SK).attrs["started_at"].value
    start_like = filler.table.items[string(STARTS_PK)].get(string(f"{probe_start}#{probe}"))
    if start_like is not None and state in (RECEIVED, PARSING, QUEUED):
        start = filler.copy(start_like, {"sk": filler.value("S", f"{started}#{mid}"),
                                         "manifest_id": filler.value("S", mid), "started_at": filler.value("S", started)})
        filler.put_partition(filler.value("S", STARTS_PK), iter([start]))
        counts["starts"] = 1
    return counts


# -- the command ------------------------------------------------------------------------------


def outputs_file(directory: Path) -> Path:
    """A ``terraform-outputs.json`` naming the table (the other outputs are placeholders ``status`` never reads)."""
    values: dict[str, Any] = {key: f"bench-{key}" for key in contract.contract_keys("aws")}
    values.update({contract.PROJECT_KEY: PROJECT, contract.ENVIRONMENT: SUFFIX, contract.REGION: REGION,
                   contract.TARGET: "aws", contract.AUDIT_TABLE_NAME: TABLE})
    assert set(VENDORS) and all(contract.vendor_key(v, "prefix") in values for v in VENDORS)
    path = directory / "terraform-outputs.json"
    path.write_text(json.dumps({f"{PROJECT}-{SUFFIX}": values}))
    return path


#: CPU seconds of each timed call, in order (client and emulator are this one process: on a shared
#: machine the wall time includes waiting for a core, the CPU time does not)
CPU: list[float] = []


def thingpress(*argv: str) -> tuple[float, str]:
    """Run ``thingpress ARGV`` as the operator does, in this process; (seconds, what it printed)."""
    from thingpress_cli.main import main

    out = io.StringIO()
    started, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(out):
        status = main(list(argv))
    seconds = time.perf_counter() - started
    CPU.append(time.process_time() - cpu)
    if status != 0:
        raise SystemExit(f"thingpress {' '.join(argv)} exited {status}:\n{out.getvalue()}")
    return seconds, out.getvalue()


@contextlib.contextmanager
def no_scans() -> Iterator[list[str]]:
    """moto's Scan refused (a ``status`` that scans fails the benchmark); the Queries made, by index."""
    from moto.dynamodb.models import DynamoDBBackend

    scan, query = DynamoDBBackend.scan, DynamoDBBackend.query
    made: list[str] = []

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("thingpress status made a Scan of the audit table")

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        made.append("Query")
        return query(self, *args, **kwargs)

    DynamoDBBackend.scan, DynamoDBBackend.query = refused, counted  # type: ignore[method-assign]
    try:
        yield made
    finally:
        DynamoDBBackend.scan, DynamoDBBackend.query = scan, query  # type: ignore[method-assign]


def timed(runs: int, call: Callable[[], tuple[float, str]]) -> list[float]:
    return [call()[0] for _ in range(runs)]


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(rows: int = ROWS, runs: int = RUNS, others: int = OTHERS) -> dict[str, Any]:
    """Fill the table, then time ``thingpress status``; the figures."""
    for name, value in CREDENTIALS.items():
        os.environ[name] = value
    os.environ.setdefault("COLUMNS", "80")
    patches.apply()  # the emulator's one patch set, as the local cloud runs it
    # the boto3 session kept (as the unit fixtures keep it): the unit test runs this in the suite's process
    with mock_aws(config={"core": {"reset_boto3_session": False}}), \
            tempfile.TemporaryDirectory(prefix="thingpress-bench-status-") as work:
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client)
        started = time.perf_counter()
        probes = write_probes(AuditTable(client, TABLE))
        counts = fill(Filler(moto_table(), probes), rows, others=others)
        build_seconds = time.perf_counter() - started
        outputs = str(outputs_file(Path(work)))
        common = ("--outputs", outputs, "--env", SUFFIX)
        with no_scans() as made:
            first, _ = thingpress("status", *common)
            first_queries = len(made)
            _, printed = thingpress("status", "--json", *common)
            listed = json.loads(printed)
            if len(listed) != len(probes) + BIG_MANIFESTS + others:
                raise SystemExit(f"thingpress status listed {len(listed)} manifests, expected "
                                 f"{len(probes) + BIG_MANIFESTS + others}")
            runs_seconds = timed(runs, lambda: thingpress("status", *common))
            runs_cpu = CPU[-runs:]
            big = manifest_id(VENDOR, "bench", "generated/big-0.csv", "v1")
            lookup = timed(runs, lambda: thingpress("status", short_id(big), "--json", *common))
            as_json = timed(runs, lambda: thingpress("status", "--json", *common))
            _, shown = thingpress("status", big, "--json", *common)
        view = json.loads(shown)
        if view["finished"] != rows // BIG_MANIFESTS + (1 if rows % BIG_MANIFESTS else 0) or view["state"] != COMPLETE:
            raise SystemExit(f"status {big} shows {view}")
    return {
        "status_seconds_1m": round(statistics.median(runs_seconds), 3),
        "status_rows": rows,
        "status_first_seconds": round(first, 3),
        "status_runs_seconds": [round(s, 3) for s in runs_seconds],
        "status_cpu_seconds": round(statistics.median(runs_cpu), 3),
        "status_lookup_seconds": round(statistics.median(lookup), 3),
        "status_json_seconds": round(statistics.median(as_json), 3),
        "status_queries": first_queries,
        "manifests": len(listed),
        "items": counts,
        "build_seconds": round(build_seconds, 1),
        "peak_rss_mib": peak_rss_mib(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS, help=f"certificate rows in the table (default {ROWS:,})")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"timed runs of thingpress status (default {RUNS})")
    parser.add_argument("--others", type=int, default=OTHERS,
                        help=f"manifests besides the {BIG_MANIFESTS} large ones (default {OTHERS})")
    parser.add_argument("--figures", type=Path, default=None,
                        help="also write status_seconds_1m and status_rows (JSON) to this file")
    args = parser.parse_args(argv)
    figures = measure(args.rows, args.runs, args.others)
    print(json.dumps(figures, sort_keys=True))
    if args.figures is not None:
        args.figures.write_text(json.dumps({k: figures[k] for k in ("status_seconds_1m", "status_rows")}, sort_keys=True))
    return goals.exit_status(figures, goals.STATUS)


if __name__ == "__main__":
    sys.exit(main())
