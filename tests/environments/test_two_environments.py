"""Two environments on one emulator (one account, one region), end to end, as preview stacks share AWS.

``local`` (the session's deployment) and ``pr7`` (deployed here with the real
cdktf CLI, thing-name prefix ``pr7-``) import the same certificates; then
``thingpress local destroy --env pr7`` (teardown, then ``cdktf destroy``, the
path ``make destroy`` takes) must leave nothing of pr7 and everything of local.

Lean on purpose: one small manifest in each environment plus one only pr7 has;
the full suites run per environment with ``THINGPRESS_ENV=<env> make test-integration``.

First, on the same pr7 (no second deploy), ``make test-preview-job ENV=pr7`` runs the PR
preview workflow's test steps as read from the workflow (``thingpress_cli.harness.preview_job``:
``make test-integration`` with ``CI=true``, ``THINGPRESS_DEPLOYMENT=remote``), so the
teardown below also undoes what the whole integration suite imported into pr7.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from pathlib import Path

from deployment_checks import PREVIEW_ENV, assert_imported, expected_certificates, upload_and_wait

from stacks.naming import Names
from thingpress.audit.states import COMPLETE
from thingpress_cli.commands import local as local_cmd
from thingpress_cli.core.certificates import write_manifest
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.local import deployments

ENV = PREVIEW_ENV
REPO = Path(__file__).resolve().parents[2]
#: the nested session's last line: everything passed but the local-only tests (tests/integration/test_watchdog.py).
PREVIEW_SUMMARY = re.compile(r"^=+ (\d+) passed, (\d+) skipped in ", re.MULTILINE)
#: the local-only tests of tests/integration, per module (the three scenarios of the watchdog edit the audit
#: table by hand; the quota warning sets the account's quota through the emulator's quota mode).
LOCAL_ONLY_BY_MODULE = {"tests/integration/test_watchdog.py": 3, "tests/integration/test_operator.py": 1}
LOCAL_ONLY = sum(LOCAL_ONLY_BY_MODULE.values())
REMOTE_SKIP = "(remote deployment: THINGPRESS_DEPLOYMENT=remote)"
SKIP_LINE = re.compile(r"^SKIPPED \[(\d+)\] ([^:]+):\d+: ")


# Runs before the scenario below, which destroys pr7 (the module's order).
def test_the_preview_workflows_test_steps_pass_against_pr7_as_a_remote_deployment(local_environment):
    local_cmd.ensure_up(env=ENV)
    began = time.monotonic()

    result = subprocess.run(["make", "--no-print-directory", "test-preview-job", f"ENV={ENV}"], cwd=REPO,
                            capture_output=True, text=True, check=False, timeout=1200)

    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    summary = PREVIEW_SUMMARY.search(out)
    assert summary and int(summary.group(2)) == LOCAL_ONLY, out[-3000:]
    # the only skips are the local-only tests, for the deployment being remote (not a missing sample, not a failure)
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert all(line.endswith(REMOTE_SKIP) for line in skipped), skipped
    by_module: dict[str, int] = {}
    for line in skipped:  # "SKIPPED [count] path:line: reason" (pytest -rs folds equal skips into one count)
        count, module = SKIP_LINE.match(line).groups()
        by_module[module] = by_module.get(module, 0) + int(count)
    assert by_module == LOCAL_ONLY_BY_MODULE, skipped
    # the workflow's step, with the workflow's settings
    assert "$ make test-integration" in out
    assert "CI=true" in out and "THINGPRESS_DEPLOYMENT=remote" in out and f"THINGPRESS_ENV={ENV}" in out
    print(f"preview job on {ENV}: {time.monotonic() - began:.0f} s")


def account_state(local: Deployment, prefix: str) -> dict[str, list[str]]:
    """Every resource named for the environment with stack prefix ``prefix`` (e.g. ``thingpress-pr7-``)."""
    iot, sqs = local.client("iot"), local.client("sqs")
    return {
        "policies": [p["policyName"] for p in iot.list_policies()["policies"] if p["policyName"].startswith(prefix)],
        "thing_types": [t["thingTypeName"] for t in iot.list_thing_types()["thingTypes"]
                        if t["thingTypeName"].startswith(prefix)],
        "thing_groups": [g["groupName"] for g in iot.list_thing_groups()["thingGroups"]
                         if g["groupName"].startswith(prefix)],
        "queues": sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []),
        "tables": [t for t in local.client("dynamodb").list_tables()["TableNames"] if t.startswith(prefix)],
        "functions": [f["FunctionName"] for f in local.client("lambda").list_functions()["Functions"]
                      if f["FunctionName"].startswith(prefix)],
    }


def test_preview_environment_comes_and_goes_beside_local(local_environment, tmp_path):
    began = time.monotonic()
    local = local_environment
    local_cmd.ensure_up(env=ENV)
    pr7 = Deployment.load(deployments.OUTPUTS, ENV)
    assert pr7.outputs.thing_name_prefix == "pr7-" and local.outputs.thing_name_prefix == ""
    iot = local.client("iot")  # one account: either deployment's client sees everything

    shared = tmp_path / "shared.txt"
    write_manifest(shared, count=4, prefix=f"Env-{uuid.uuid4().hex[:8]}-")
    only_pr7 = tmp_path / "only-pr7.txt"
    write_manifest(only_pr7, count=3, prefix=f"Pr7-{uuid.uuid4().hex[:8]}-")
    # pr7 registers the shared certificates first; local then creates its own things for them.
    for path in (shared, only_pr7):
        row = upload_and_wait(pr7, path)
        assert (row["state"], row["imported"]) == (COMPLETE, row["entries"])
    row = upload_and_wait(local, shared)
    assert (row["state"], row["imported"]) == (COMPLETE, 4)
    local_certs = expected_certificates(local, shared)
    pr7_things = [c.thing_name for c in expected_certificates(pr7, shared) + expected_certificates(pr7, only_pr7)]
    assert all(name.startswith("pr7-") for name in pr7_things) and not any(
        c.thing_name.startswith("pr7-") for c in local_certs)
    for cert in local_certs:
        assert_imported(local, iot, cert)
    assert all(iot.describe_thing(thingName=n)["attributes"]["thingpress_env"] == ENV for n in pr7_things)
    only_pr7_ids = [c.fingerprint for c in expected_certificates(pr7, only_pr7)]

    local_cmd.destroy(ENV)

    assert not deployments.deployed(ENV)
    assert account_state(local, Names(ENV, "us-east-1").stack + "-") == {
        "policies": [], "thing_types": [], "thing_groups": [], "queues": [], "tables": [], "functions": []}
    for name in pr7_things:
        assert not _exists(iot, name), name
    for certificate_id in only_pr7_ids:
        assert not _certificate_exists(iot, certificate_id), certificate_id
    for cert in local_certs:  # registered by pr7, still used by local: kept, ACTIVE, attached
        assert_imported(local, iot, cert)
    print(f"two-environment scenario: {time.monotonic() - began:.0f} s")


def _exists(iot, thing_name: str) -> bool:
    try:
        iot.describe_thing(thingName=thing_name)
        return True
    except iot.exceptions.ResourceNotFoundException:
        return False


def _certificate_exists(iot, certificate_id: str) -> bool:
    try:
        iot.describe_certificate(certificateId=certificate_id)
        return True
    except iot.exceptions.ResourceNotFoundException:
        return False
