"""``thingpress plan`` against in-process AWS: classes, reasons, ETA, one JSON document."""

from __future__ import annotations

import json

import factories
import pytest

from thingpress.settings import FunctionSettings
from thingpress_cli.engines import plan as plan_engine
from thingpress_cli.main import main


def plan_json(capsys, *argv: str) -> dict:
    assert main(["plan", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON document
    return json.loads(out)


@pytest.fixture
def half_overlap(cloud, tmp_path):
    """Manifest A (devices 0-3) imported; B holds devices 2-5, a refused line, and device 5's thing
    exists with another certificate."""
    devs = factories.devices(8, prefix="Plan-")
    first = tmp_path / "first.txt"
    first.write_bytes(factories.generated_manifest(devs[:4]))
    cloud.run(first)
    other = factories.devices(1, prefix="Other-")[0]
    cert = cloud.iot.register_certificate_without_ca(certificatePem=factories.certificate_pem(other), status="ACTIVE")
    cloud.iot.create_thing(thingName=devs[5].name)
    cloud.iot.attach_thing_principal(thingName=devs[5].name, principal=cert["certificateArn"])
    second = tmp_path / "second.txt"
    second.write_bytes(factories.generated_manifest(devs[2:6]) + b"!!\n")
    return devs, second, cert["certificateArn"]


def test_plan_counts_each_class(cloud, half_overlap, capsys):
    devs, second, other_arn = half_overlap
    report = plan_json(capsys, str(second))
    assert {k: report[k] for k in ("entries", "new", "already_registered", "thing_conflict", "refused",
                                   "duplicates", "backlog")} == {
        "entries": 5, "new": 1, "already_registered": 2, "thing_conflict": 1, "refused": 1, "duplicates": 0,
        "backlog": 0}
    assert report["conflicts"] == [{"position": 4, "thing_name": devs[5].name, "principals": [other_arn]}]
    assert [r["certificate_id"] for r in report["registered"]] == [factories.fingerprint(d) for d in devs[2:4]]
    assert {r["status"] for r in report["registered"]} == {"ACTIVE"}
    assert report["refusals"] == [{"position": 5, "reason": "line 5: not standard base64"}]
    # 4 certificates; the slowest API is AttachPolicy at 10/s (RegisterCertificateWithoutCA at 20/s)
    assert report["eta_seconds"] == 0.4


def test_plan_is_read_only(cloud, half_overlap, capsys):
    devs, second, _ = half_overlap
    before = len(cloud.iot.list_certificates()["certificates"])
    plan_json(capsys, str(second))
    assert len(cloud.iot.list_certificates()["certificates"]) == before
    with pytest.raises(cloud.iot.exceptions.ResourceNotFoundException):
        cloud.iot.describe_thing(thingName=devs[4].name)


def test_eta_counts_the_import_backlog(cloud, tmp_path, capsys):
    for i in range(6):
        cloud.sqs.send_message(QueueUrl=cloud.deployment.outputs.import_queue_url, MessageBody=f"{i}")
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(4, prefix="Eta-")))
    report = plan_json(capsys, str(path))
    assert (report["new"], report["backlog"], report["eta_seconds"]) == (4, 6, 1.0)


def test_eta_uses_the_slowest_api_per_certificate():
    settings = FunctionSettings(audit_table="t", policy_names=("a", "b"), thing_group="g",
                                iot_tps={"RegisterCertificateWithoutCA": 10, "CreateThing": 100,
                                         "AttachThingPrincipal": 100, "AttachPolicy": 15, "AddThingToThingGroup": 100})
    # two policies at 15/s: 2/15 s per certificate beats one registration at 10/s
    assert plan_engine.seconds_per_certificate(settings) == pytest.approx(2 / 15)
    assert plan_engine.eta_seconds(150, 0, settings) == 20.0


def test_human_output(cloud, half_overlap, capsys):
    devs, second, other_arn = half_overlap
    assert main(["plan", str(second)]) == 0
    out = capsys.readouterr().out
    assert "  new                 1\n" in out and "  already registered  2\n" in out
    assert "  thing conflict      1  (thing exists with another certificate)\n" in out
    assert f"  4: thing {devs[5].name} has certificate {other_arn.rsplit('/', 1)[1][:16]}…\n" in out
    assert "  5: line 5: not standard base64\n" in out


def test_bad_file_exits_2_and_missing_deployment_3(cloud, tmp_path, capsys, monkeypatch):
    path = tmp_path / "x.zip"
    path.write_bytes(b"PK")
    assert main(["plan", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "cannot tell the vendor from the file name" in captured.err
    good = tmp_path / "m.txt"
    good.write_bytes(factories.generated_manifest(factories.devices(1)))
    monkeypatch.setenv("THINGPRESS_OUTPUTS", str(tmp_path / "none.json"))
    assert main(["plan", str(good)]) == 3
    assert "no outputs file" in capsys.readouterr().err


def test_read_budget_defaults_low_and_can_be_raised():
    assert plan_engine.probe_tps(None) == plan_engine.PROBE_TPS
    assert plan_engine.probe_tps(10) == {"DescribeCertificate": 10, "ListThingPrincipals": 10, "DescribeThing": 40}


def test_a_microchip_plan_warns_of_a_trusted_signer_that_expires_soon(cloud, tmp_path, capsys):
    from cryptography.hazmat.primitives import serialization

    signer = factories.microchip_signer(not_after=factories.at(30), name="signer expiring")
    signers = tmp_path / "signers"
    signers.mkdir()
    (signers / "expiring.crt").write_bytes(signer.certificate.public_bytes(serialization.Encoding.PEM))
    path = tmp_path / "m.json"
    path.write_bytes(factories.microchip_manifest_for(factories.devices(2, prefix="Sig-"), signer))
    ends = signer.certificate.not_valid_after_utc

    report = plan_json(capsys, str(path), "--signers", str(signers))

    assert report["new"] == 2
    assert report["signer_notices"] == [
        f"trusted Microchip signer 'signer expiring' expires on {ends:%Y-%m-%d} (in 29 days): add its successor "
        "before manifests signed after that arrive"]
    assert main(["plan", str(path), "--signers", str(signers)]) == 0
    assert f"warning: {report['signer_notices'][0]}\n" in capsys.readouterr().out


def test_things_are_looked_up_by_the_names_the_deployment_gives_them(cloud, tmp_path):
    """A preview environment prefixes thing names (pr7-): its plan finds pr7-<name>'s conflict, not <name>'s."""
    from thingpress.thing_names import ThingNameTemplate

    devs = factories.devices(2, prefix="Named-")
    other = factories.devices(1, prefix="Elsewhere-")[0]
    cert = cloud.iot.register_certificate_without_ca(certificatePem=factories.certificate_pem(other), status="ACTIVE")
    cloud.iot.create_thing(thingName=f"pr7-{devs[1].name}")
    cloud.iot.attach_thing_principal(thingName=f"pr7-{devs[1].name}", principal=cert["certificateArn"])
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(devs))
    probe = plan_engine.AccountProbe(cloud.iot)
    settings = cloud.deployment.importer_settings()

    plan = plan_engine.make_plan(path, "generated", plan_engine.ParseOptions(), probe, settings, 0,
                              names=ThingNameTemplate(prefix="pr7-"))

    assert (plan.counts[plan_engine.NEW], plan.counts[plan_engine.THING_CONFLICT]) == (1, 1)
    assert plan.conflicts == [{"position": 2, "thing_name": f"pr7-{devs[1].name}",
                               "principals": [cert["certificateArn"]]}]
