"""The operator's commands against the deployment: plan, upload --wait, status, reconcile, redrive, report.

Each runs through the real entry point (``thingpress_cli.main.main``) against the
deployment named by ``THINGPRESS_ENV`` and its outputs file (the local emulator by
default); results are checked in the audit table, IoT and SQS.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from thingpress.audit.states import COMPLETE, IMPORTED
from thingpress_cli.core.certificates import write_manifest
from thingpress_cli.core.progress import short_id
from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.local.emulator.quota import DEFAULT_RATES
from thingpress_cli.main import main

from deployment_checks import WAIT_SECONDS, upload_and_wait

REGISTER = "RegisterCertificateWithoutCA"


def _run_json(capsys, *argv: str, status: int = 0) -> dict:
    assert main([*argv, "--json"]) == status
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out  # one JSON document
    return json.loads(out)


def _halves(tmp_path: Path) -> tuple[Path, Path]:
    """Two generated manifests that share two of their four certificates."""
    whole = tmp_path / "whole.txt"
    write_manifest(whole, count=6, prefix=f"Plan-{uuid.uuid4().hex[:8]}-")
    lines = whole.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_bytes(b"".join(lines[:4]))
    second.write_bytes(b"".join(lines[2:]))
    return first, second


def test_plan_then_upload_wait_on_a_half_overlapping_manifest(deployment, tmp_path, capsys):
    first, second = _halves(tmp_path)
    assert upload_and_wait(deployment, first)["imported"] == 4

    plan = _run_json(capsys, "plan", str(second))
    assert {k: plan[k] for k in ("entries", "new", "already_registered", "thing_conflict", "refused")} == {
        "entries": 4, "new": 2, "already_registered": 2, "thing_conflict": 0, "refused": 0}
    assert plan["eta_seconds"] > 0

    view = _run_json(capsys, "upload", str(second), "--wait", "--timeout", str(WAIT_SECONDS))
    assert (view["state"], view["imported"], view["already_present"], view["failed"]) == (COMPLETE, 2, 2, 0)


@pytest.mark.local_only("the account's quota is set through the emulator's quota mode")
def test_plan_warns_when_the_budget_exceeds_the_account_s_quota(deployment, tmp_path, capsys):
    """GetServiceQuota on the local cloud answers the quota mode's rates: half the deployed budget warns."""
    url = deployment.outputs.endpoint_url
    budget = deployment.importer_settings().iot_tps[REGISTER]
    before = emulator.current_quotas(url)
    path = tmp_path / "m.txt"
    write_manifest(path, count=4, prefix=f"Quota-{uuid.uuid4().hex[:8]}-")
    try:
        emulator.set_quotas(url, {**DEFAULT_RATES, REGISTER: budget / 2})
        assert main(["plan", str(path), "--json"]) == 0
        captured = capsys.readouterr()
    finally:
        emulator.set_quotas(url, before or "off")
    plan = json.loads(captured.out)
    row = next(r for r in plan["quotas"] if r["api"] == REGISTER)
    assert (row["budget"], row["quota"], row["source"], row["exceeded"]) == (budget, budget / 2, "account", True)
    assert f"the deployed IoT budget for {REGISTER} is {budget:g}/s, above the account's quota" in captured.err
    assert plan["eta_seconds"] > plan["eta_seconds_at_budget"] > 0


def test_status_fits_80_columns_and_accepts_short_ids(deployment, tmp_path, capsys, monkeypatch):
    first, _ = _halves(tmp_path)
    row = upload_and_wait(deployment, first)
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert any(line.startswith(short_id(row["manifest_id"]) + " COMPLETE") for line in lines)
    assert _run_json(capsys, "status", short_id(row["manifest_id"]))["manifest"] == row["manifest_id"]
    assert main(["report", short_id(row["manifest_id"])]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5  # header and four certificates


def test_reconcile_finds_and_fixes_a_thing_taken_out_of_its_group(deployment, iot, tmp_path, capsys):
    """The device policy is attached to the thing group (the default): a thing out of the group has no policy."""
    first, _ = _halves(tmp_path)
    row = upload_and_wait(deployment, first)
    mid = row["manifest_id"]
    cert = next(r for r in deployment.audit_table().entries(mid) if r["status"] == IMPORTED)
    group = deployment.outputs.thing_group_name
    iot.remove_thing_from_thing_group(thingGroupName=group, thingName=cert["thing_name"])

    found = _run_json(capsys, "reconcile", mid, status=1)
    assert (found["checked"], found["drift"], found["fixed"]) == (4, 1, 0)
    assert found["items"][0]["problems"] == [{"problem": "group", "detail": (
        f"thing {cert['thing_name']} not in group {group}")}]
    fixed = _run_json(capsys, "reconcile", mid, "--fix")
    assert (fixed["drift"], fixed["fixed"]) == (1, 1)
    assert _run_json(capsys, "reconcile", mid)["drift"] == 0
    assert deployment.audit_table().get_outcome(mid, cert["fingerprint"])["reconciled"] == ["group"]
    groups = iot.list_thing_groups_for_thing(thingName=cert["thing_name"])["thingGroups"]
    assert group in {g["groupName"] for g in groups}


def test_redrive_moves_the_import_dlq_back_with_a_move_task(deployment, capsys):
    sqs = deployment.client("sqs")
    out = deployment.outputs
    sqs.send_message(QueueUrl=out.import_dlq_url, MessageBody=json.dumps({"not": "an import message"}))
    result = _run_json(capsys, "redrive", "--queue", "import")
    assert result["failed"] == 0
    [queue] = result["queues"]
    assert (queue["queue"], queue["status"]) == ("import", "COMPLETED") and queue["moved"] >= 1
    assert deployment.queue_depth(out.import_dlq_url) == 0
    # the importer takes it from its queue again (and records the unreadable message)
    deadline = time.monotonic() + 120
    while deployment.queue_depth(out.import_queue_url):
        assert time.monotonic() < deadline, "the import queue was not drained after the redrive"
        time.sleep(1)
