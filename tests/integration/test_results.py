"""The results files on the deployment: a completed manifest's results.jsonl and errors.jsonl appear in
the manifests bucket, written by the results writer the completion event starts.

The path is AWS's: the completing function's PutEvents, the stack's results rule on the bus, the
results queue, the results function (the local runner runs it on its SQS mapping as Lambda would),
its streamed conditional writes under ``results/`` (SSE-KMS), its note on the summary.
"""

from __future__ import annotations

import json
import time
import uuid

from thingpress.audit.states import COMPLETE, IMPORTED, REJECTED
from thingpress.results.keys import FIELDS, noted_results, results_keys
from thingpress_cli.commands import report
from thingpress_cli.core.certificates import write_manifest

from deployment_checks import upload_and_wait

#: how long the files may trail the COMPLETE summary (event delivery, the queue's poll, the writer's run).
RESULTS_WAIT_SECONDS = 90


def _wait_for_results(table, mid: str, wait: float) -> dict:
    deadline = time.monotonic() + wait
    while True:
        noted = noted_results(table.get_summary(mid) or {})
        if noted:
            return noted
        if time.monotonic() > deadline:
            raise AssertionError(f"manifest {mid}: no results noted on its summary within {wait:.0f} s after "
                                 "COMPLETE (the results queue or its DLQ; local: build/local/logs)")
        time.sleep(1)


def test_a_completed_manifest_gets_its_results_files(deployment, tmp_path):
    run = uuid.uuid4().hex[:8]
    valid = tmp_path / "valid.txt"
    write_manifest(valid, count=3, prefix=f"Res-{run}-")
    manifest = tmp_path / f"results-{run}.txt"
    manifest.write_bytes(valid.read_bytes() + b"this line is no certificate\n")  # 3 certificates, 1 bad line

    row = upload_and_wait(deployment, manifest)
    assert row["state"] == COMPLETE, row
    mid = row["manifest_id"]
    table = deployment.audit_table()
    noted = _wait_for_results(table, mid, RESULTS_WAIT_SECONDS)

    keys = results_keys(mid)
    assert noted == {**keys, "lines": 4, "errors": 1}
    s3, bucket = deployment.client("s3"), deployment.outputs.bucket_name
    lines = {}
    for name, key in keys.items():
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["ServerSideEncryption"] == "aws:kms", name
        lines[name] = [json.loads(line) for line in got["Body"].read().decode().splitlines()]
    assert all(list(line) == list(FIELDS) for line in lines["results_key"])
    assert sorted(line["status"] for line in lines["results_key"]) == [IMPORTED] * 3 + [REJECTED]
    imported = [line for line in lines["results_key"] if line["status"] == IMPORTED]
    # thing names end with the certificates' CNs (a preview environment prefixes them)
    assert sorted(line["thing_name"].rsplit("Res-", 1)[-1] for line in imported) == [f"{run}-{i}" for i in range(3)]
    assert all(line["certificate_id"] and line["fingerprint"] and line["position"] in (1, 2, 3) for line in imported)
    (error,) = lines["errors_key"]
    assert error["status"] == REJECTED and error["reason"] and error["position"] == 4
    # thingpress report streams the file now, with the table's records
    assert list(report.records_of(deployment, mid, "results")) == list(report.records_of(deployment, mid, "table"))
