"""The quota check of ``plan`` and ``upload`` against in-process AWS (thingpress_cli/core/quotas.py).

The ``cloud`` fixture's importer budget: RegisterCertificateWithoutCA 20/s, AttachPolicy 10/s, the
rest AWS's defaults (100/s); its account's quotas are raised ones unless a test sets its own
(``servicequotas.answer_from``: GetServiceQuota answers the given rates, NoSuchResourceException
for an API without one).
"""

from __future__ import annotations

import json

import boto3
import factories
import pytest
from botocore.stub import Stubber

from thingpress.iot_quotas import AS_OF, IOT_API_QUOTAS, SERVICE_CODE
from thingpress_cli.core import quotas as quota_check
from thingpress_cli.local.emulator import servicequotas
from thingpress_cli.local.emulator.quota import Quotas
from thingpress_cli.main import main

REGISTER = "RegisterCertificateWithoutCA"


def account_quotas(rates: dict[str, float]) -> None:
    servicequotas.answer_from(Quotas(dict(rates)))


@pytest.fixture
def manifest(cloud, tmp_path):
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(4, prefix="Quota-")))
    return path


def by_api(report: dict) -> dict[str, dict]:
    return {row["api"]: row for row in report["quotas"]}


def test_plan_warns_when_the_budget_exceeds_a_quota(cloud, manifest, capsys):
    account_quotas({REGISTER: 5, "*": 100})
    assert main(["plan", str(manifest), "--json"]) == 0
    captured = capsys.readouterr()
    warnings = captured.err.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith(
        f"warning: the deployed IoT budget for {REGISTER} is 20/s, above the account's quota of 5/s")
    report = json.loads(captured.out)
    rows = by_api(report)
    assert rows[REGISTER] == {"api": REGISTER, "budget": 20.0, "quota": 5.0, "source": "account", "exceeded": True,
                              "quota_code": IOT_API_QUOTAS[REGISTER].code}
    assert rows["AttachPolicy"]["budget"] == 10.0 and rows["AttachPolicy"]["exceeded"] is False
    assert {row["source"] for row in rows.values()} == {"account"} and report["quotas_as_of"] == AS_OF
    # the ETA at the lower of the two: 4 certificates at 5/s (the quota), at the budget 10/s (AttachPolicy)
    assert (report["eta_seconds"], report["eta_seconds_at_budget"]) == (0.8, 0.4)


def test_plan_human_output_says_the_pace(cloud, manifest, capsys):
    account_quotas({REGISTER: 5, "*": 100})
    assert main(["plan", str(manifest)]) == 0
    captured = capsys.readouterr()
    assert "eta: 1 s at the lower of the deployed IoT budget and the account's quotas" in captured.out
    assert "warning" not in captured.out and "above the account's quota of 5/s" in captured.err


def test_no_warning_within_the_quotas(cloud, manifest, capsys):
    account_quotas({REGISTER: 20, "AttachPolicy": 10, "*": 100})  # exactly the budget
    assert main(["plan", str(manifest), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    report = json.loads(captured.out)
    assert not any(row["exceeded"] for row in report["quotas"])
    assert report["eta_seconds"] == report["eta_seconds_at_budget"] == 0.4


def test_without_a_value_the_quota_is_aws_s_default(cloud, manifest, capsys):
    account_quotas({})  # Service Quotas has no value for any of them: NoSuchResourceException
    assert main(["plan", str(manifest), "--json"]) == 0
    captured = capsys.readouterr()
    rows = by_api(json.loads(captured.out))
    assert {api: (row["quota"], row["source"], row["default_because"]) for api, row in rows.items()} == {
        api: (float(quota.default), "default", "NoSuchResourceException") for api, quota in IOT_API_QUOTAS.items()}
    # the fixture's budget of 20/s is above the default 10/s
    assert captured.err.splitlines() == [
        f"warning: the deployed IoT budget for {REGISTER} is 20/s, above AWS's default quota (as of {AS_OF}; "
        f"NoSuchResourceException) of 10/s: calls beyond the quota are throttled; the ETA uses 10/s. Lower "
        f"THINGPRESS_IOT_TPS or ask for a quota increase (Service Quotas, {SERVICE_CODE} "
        f"{IOT_API_QUOTAS[REGISTER].code})"]


def test_upload_warns_and_gives_the_pace_at_the_lower_of_the_two(cloud, manifest, capsys):
    account_quotas({REGISTER: 5, "*": 100})
    for i in range(10):
        cloud.sqs.send_message(QueueUrl=cloud.deployment.outputs.import_queue_url, MessageBody=f"{i}")
    assert main(["upload", str(manifest), "--json"]) == 0
    captured = capsys.readouterr()
    assert "above the account's quota of 5/s" in captured.err
    result = json.loads(captured.out)
    assert (result["certificates_per_second"], result["backlog"], result["backlog_eta_seconds"]) == (5.0, 10, 2.0)
    assert by_api(result)[REGISTER]["exceeded"] is True
    assert main(["upload", str(manifest)]) == 0
    assert "pace: 5 certificates/s (budget or quota, the lower); 10 queued ahead (2 s)" in capsys.readouterr().out


def stubbed(error_code: str) -> tuple[object, Stubber]:
    client = boto3.client("service-quotas", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_client_error("get_service_quota", service_error_code=error_code,
                          expected_params={"ServiceCode": SERVICE_CODE, "QuotaCode": IOT_API_QUOTAS[REGISTER].code})
    stub.activate()
    return client, stub


def test_an_operator_who_may_not_read_quotas_gets_the_defaults():
    client, stub = stubbed("AccessDeniedException")
    assert quota_check.read_quota(client, REGISTER) == (10.0, "default", "AccessDeniedException")
    stub.assert_no_pending_responses()


def test_any_other_error_is_an_aws_error():
    client, _ = stubbed("TooManyRequestsException")
    with pytest.raises(client.exceptions.TooManyRequestsException):
        quota_check.read_quota(client, REGISTER)
