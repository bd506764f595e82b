"""``thingpress reconcile`` against in-process AWS: each kind of drift found, fixed and recorded."""

from __future__ import annotations

import json

import factories
import pytest
from cli_cloud import POLICY, THING_GROUP, THING_TYPE

from thingpress_cli.core.progress import short_id
from thingpress_cli.main import main


def reconcile_json(capsys, *argv: str, status: int = 0) -> dict:
    assert main(["reconcile", *argv, "--json"]) == status
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


@pytest.fixture
def drifted(cloud, tmp_path, capsys):
    """Six certificates imported; then five of them drift, each in one way."""
    devs = factories.devices(6, prefix="Drift-")
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(devs))
    mid = cloud.run(path)
    iot = cloud.iot
    arn = {d.name: iot.describe_certificate(certificateId=factories.fingerprint(d))["certificateDescription"]
           ["certificateArn"] for d in devs}
    iot.detach_policy(policyName=POLICY, target=arn[devs[0].name])
    iot.detach_thing_principal(thingName=devs[1].name, principal=arn[devs[1].name])
    iot.remove_thing_from_thing_group(thingGroupName=THING_GROUP, thingName=devs[2].name)
    iot.create_thing_type(thingTypeName="other-type")
    iot.update_thing(thingName=devs[3].name, thingTypeName="other-type")
    iot.update_certificate(certificateId=factories.fingerprint(devs[4]), newStatus="INACTIVE")
    capsys.readouterr()  # the in-process provider's log lines
    return mid, devs


def test_reconcile_reports_each_drift(cloud, drifted, capsys):
    mid, devs = drifted
    result = reconcile_json(capsys, short_id(mid), status=1)
    assert (result["checked"], result["drift"], result["fixed"]) == (6, 5, 0)
    problems = {i["thing_name"]: [(p["problem"], p["detail"]) for p in i["problems"]] for i in result["items"]}
    assert problems == {
        devs[0].name: [("policy", f"policy {POLICY} not attached to the certificate")],
        devs[1].name: [("attachment", f"certificate not attached to thing {devs[1].name}")],
        devs[2].name: [("group", f"thing {devs[2].name} not in group {THING_GROUP}")],
        devs[3].name: [("thing_type", f"thing type other-type, expected {THING_TYPE}")],
        devs[4].name: [("status", "certificate status INACTIVE, expected ACTIVE")],
    }
    assert result["by_problem"] == {"attachment": 1, "group": 1, "policy": 1, "status": 1, "thing_type": 1}


def test_reconcile_fix_repairs_records_and_leaves_status(cloud, drifted, capsys):
    mid, devs = drifted
    result = reconcile_json(capsys, "--all", "--fix", status=1)  # the INACTIVE certificate is not fixed
    assert (result["checked"], result["drift"], result["fixed"]) == (6, 5, 4)
    again = reconcile_json(capsys, "--all", status=1)
    assert [i["thing_name"] for i in again["items"]] == [devs[4].name]
    row = cloud.audit.get_outcome(mid, factories.fingerprint(devs[0]))
    assert row["reconciled"] == ["policy"] and row["reconciled_at"]
    assert "reconciled" not in cloud.audit.get_outcome(mid, factories.fingerprint(devs[5]))
    assert cloud.audit.get_summary(mid)["imported"] == 6  # outcomes and counters untouched
    assert cloud.iot.describe_thing(thingName=devs[3].name)["thingTypeName"] == THING_TYPE


def test_a_deleted_thing_is_recreated_and_reattached(cloud, tmp_path, capsys):
    devs = factories.devices(1, prefix="Gone-")
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(devs))
    mid = cloud.run(path)
    arn = cloud.iot.describe_certificate(certificateId=factories.fingerprint(devs[0]))["certificateDescription"][
        "certificateArn"]
    cloud.iot.detach_thing_principal(thingName=devs[0].name, principal=arn)
    cloud.iot.remove_thing_from_thing_group(thingGroupName=THING_GROUP, thingName=devs[0].name)
    cloud.iot.delete_thing(thingName=devs[0].name)
    capsys.readouterr()
    result = reconcile_json(capsys, mid, "--fix")
    assert [p["problem"] for p in result["items"][0]["problems"]] == ["thing", "attachment", "group"]
    assert result["items"][0]["fixed"] == ["thing", "attachment", "group"]
    assert cloud.iot.list_thing_principals(thingName=devs[0].name)["principals"] == [arn]
    assert reconcile_json(capsys, mid)["drift"] == 0


def test_human_output_and_usage(cloud, drifted, capsys):
    mid, devs = drifted
    assert main(["reconcile", mid]) == 1
    out = capsys.readouterr().out
    assert out.startswith("checked 6 certificates: 5 drifted (attachment 1, group 1, policy 1, status 1, "
                          "thing_type 1)\n")
    assert f"    policy: policy {POLICY} not attached to the certificate\n" in out
    assert main(["reconcile"]) == 2
    assert capsys.readouterr().err == "thingpress reconcile: name one MANIFEST or --all\n"


def test_every_configured_group_is_checked_not_only_the_first(cloud, tmp_path, capsys):
    """The importer joins each thing to every THINGPRESS_THING_GROUP group: reconcile checks each (issue 22, 10)."""
    from dataclasses import replace

    from thingpress import settings as env

    cloud.iot.create_thing_group(thingGroupName="fleet-b")
    groups = f"{THING_GROUP},fleet-b"
    lam = cloud.deployment.client("lambda")
    name = cloud.deployment.outputs.importer_function_name
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {**variables,
                                                                                  env.THING_GROUP: groups}})
    cloud.settings = replace(cloud.settings, thing_group=THING_GROUP, thing_groups=(THING_GROUP, "fleet-b"))
    devs = factories.devices(2, prefix="Groups-")
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(devs))
    mid = cloud.run(path)
    assert cloud.iot.list_things_in_thing_group(thingGroupName="fleet-b")["things"] == [d.name for d in devs]
    cloud.iot.remove_thing_from_thing_group(thingGroupName="fleet-b", thingName=devs[1].name)
    capsys.readouterr()

    result = reconcile_json(capsys, mid, status=1)
    assert [(i["thing_name"], i["problems"]) for i in result["items"]] == [
        (devs[1].name, [{"problem": "group", "detail": f"thing {devs[1].name} not in group fleet-b"}])]

    assert reconcile_json(capsys, mid, "--fix")["fixed"] == 1
    assert sorted(cloud.iot.list_things_in_thing_group(thingGroupName="fleet-b")["things"]) == [d.name for d in devs]
    assert reconcile_json(capsys, mid)["drift"] == 0


def test_every_manifest_is_checked_without_an_index_of_statuses(cloud, tmp_path, capsys):
    """``--all`` reads each listed manifest's rows (issue 23: no by_status index): two manifests, all rows."""
    mids = []
    for n, prefix in ((3, "AllA-"), (2, "AllB-")):
        path = tmp_path / f"{prefix}m.txt"
        path.write_bytes(factories.generated_manifest(factories.devices(n, prefix=prefix)))
        mids.append(cloud.run(path))
    capsys.readouterr()
    result = reconcile_json(capsys, "--all")
    assert (result["checked"], result["drift"]) == (5, 0)
