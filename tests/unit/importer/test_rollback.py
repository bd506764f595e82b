"""thingpress rollback / teardown against in-process moto: two environments in one account.

``pr7`` (thing-name prefix ``pr7-``) and ``dev`` (vendor names) import with the
real importer into their own audit tables, sharing IoT. Each test checks IoT
state and audit rows: only what the rolled-back environment created changes.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from aws_fixtures import REGION, create_audit_table
from importer_helpers import FUNCTION_ARN, POLICY, QUEUED_AT, THING_GROUP, THING_TYPE, Aws, der_sha256, device_pem

from stacks.naming import Names
from thingpress.audit.keys import manifest_id
from thingpress.audit.states import ALREADY_PRESENT, COMPLETE, IMPORTED, QUEUED, ROLLED_BACK
from thingpress.audit.summaries import Progress
from thingpress.audit.table import AuditTable
from thingpress.importer.rules import CertificateArns
from thingpress.importer.runtime import Importer
from thingpress.messages import ImportMessage
from thingpress.settings import FunctionSettings
from thingpress.throttle import Throttle
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.engines import rollback, rollback_calls, teardown

PR7 = Names("pr7", REGION)


@functools.cache
def pem_for(cn: str) -> str:
    """One certificate per common name for the whole module: both environments import the same ones."""
    return device_pem(cn)


@dataclass
class Env:
    name: str
    table: AuditTable
    policy: str
    thing_type: str
    group: str
    prefix: str

    def importer(self, iot: Any) -> Importer:
        settings = FunctionSettings(audit_table=self.table.table, vendor="generated", thing_type=self.thing_type,
                                    thing_group=self.group, policy_names=(self.policy,), environment=self.name)
        return Importer(iot, self.table, settings, arns=CertificateArns.from_function_arn(FUNCTION_ARN, REGION),
                        throttle=Throttle(settings.iot_tps, sleep=lambda _s: None))

    def import_manifest(self, iot: Any, cns: list[str], key: str = "m.txt") -> str:
        mid = manifest_id("generated", "bucket", f"{self.name}/{key}", "v1")
        self.table.start_manifest(mid, vendor="generated", bucket="bucket", key=key, version="v1", etag="e", size=1,
                                  environment=self.name)
        self.table.checkpoint(mid, len(cns), Progress(entries=len(cns), queued=len(cns)), state=QUEUED,
                              parse_done=True)
        importer = self.importer(iot)
        for position, cn in enumerate(cns, start=1):
            pem = pem_for(cn)
            message = ImportMessage(manifest_id=mid, vendor="generated", position=position,
                                    thing_name=self.prefix + cn, fingerprint=der_sha256(pem), certificate_pem=pem,
                                    queued_at=QUEUED_AT)
            assert importer.handle(message.encode(), message_id=f"{mid}-{position}").status in (
                IMPORTED, ALREADY_PRESENT)
        return mid

    def rollback(self, iot: Any, scope: set[str], *, delete: bool, apply: bool,
                 throttle: Throttle | None = None) -> rollback.Rollback:
        own = (self.policy,) if self.policy == PR7.iot_policy else ()
        return rollback.Rollback(iot, self.table, environment=self.name, policy_names=(self.policy,),
                                 own_policies=own, scope=scope, delete=delete, apply=apply, reason="test",
                                 throttle=throttle or rollback_calls.new_throttle(sleep=lambda _s: None))


@pytest.fixture
def envs(aws: Aws) -> dict[str, Env]:
    aws.iot.create_policy(policyName=PR7.iot_policy, policyDocument='{"Version":"2012-10-17","Statement":[]}')
    aws.iot.create_thing_type(thingTypeName=PR7.thing_type)
    aws.iot.create_thing_group(thingGroupName=PR7.thing_group)
    pr7_table = AuditTable(aws.dynamodb, create_audit_table(aws.dynamodb, PR7.audit_table))
    return {
        "dev": Env("dev", aws.audit, POLICY, THING_TYPE, THING_GROUP, ""),
        "pr7": Env("pr7", pr7_table, PR7.iot_policy, PR7.thing_type, PR7.thing_group, "pr7-"),
    }


def iot_state(aws: Aws) -> dict[str, Any]:
    """Every thing (with principals) and certificate (with status and policies) in the account."""
    things = {t["thingName"]: sorted(aws.iot.list_thing_principals(thingName=t["thingName"])["principals"])
              for t in aws.iot.list_things()["things"]}
    certs = {c["certificateId"]: (c["status"], sorted(aws.policies(c["certificateArn"])))
             for c in aws.iot.list_certificates()["certificates"]}
    return {"things": things, "certificates": certs}


def test_dry_run_counts_and_changes_nothing(aws: Aws, envs: dict[str, Env]) -> None:
    pr7 = envs["pr7"]
    mid = pr7.import_manifest(aws.iot, ["A", "B", "C"])
    before, rows_before = iot_state(aws), pr7.table.entries(mid)

    undo = pr7.rollback(aws.iot, {mid}, delete=True, apply=False)
    undo.manifest(mid)

    assert dict(undo.report.counts) == {"rows": 3, "principals_detached": 3, "policies_detached": 3,
                                        "certificates_deactivated": 3, "certificates_deleted": 3, "things_deleted": 3}
    assert iot_state(aws) == before
    assert pr7.table.entries(mid) == rows_before and pr7.table.get_summary(mid)["state"] == COMPLETE


def test_delete_removes_what_the_manifest_created_and_records_each_row(aws: Aws, envs: dict[str, Env]) -> None:
    pr7 = envs["pr7"]
    mid = pr7.import_manifest(aws.iot, ["A", "B"])

    undo = pr7.rollback(aws.iot, {mid}, delete=True, apply=True)
    undo.manifest(mid)

    assert iot_state(aws) == {"things": {}, "certificates": {}}
    rows = pr7.table.entries(mid)
    assert {(r["status"], r["previous_status"], r["rollback_mode"], r["rollback_reason"]) for r in rows} == {
        (ROLLED_BACK, IMPORTED, "delete", "test")}
    assert all(r["rolled_back_at"] and r["rollback_actions"][-1].startswith("DeleteThing pr7-") for r in rows)
    summary = pr7.table.get_summary(mid)
    assert (summary["state"], summary["previous_state"], summary["rolled_back"]) == (
        ROLLED_BACK, COMPLETE, 2)


def test_deactivate_keeps_things_then_delete_finishes_and_a_rerun_does_nothing(aws: Aws, envs: dict[str, Env]) -> None:
    pr7 = envs["pr7"]
    mid = pr7.import_manifest(aws.iot, ["A"])
    fp = der_sha256(pem_for("A"))

    pr7.rollback(aws.iot, {mid}, delete=False, apply=True).manifest(mid)
    assert iot_state(aws) == {"things": {"pr7-A": []}, "certificates": {fp: ("INACTIVE", [])}}

    pr7.rollback(aws.iot, {mid}, delete=True, apply=True).manifest(mid)
    assert iot_state(aws) == {"things": {}, "certificates": {}}

    again = pr7.rollback(aws.iot, {mid}, delete=True, apply=True)
    again.manifest(mid)
    assert dict(again.report.counts) == {}


def test_certificate_another_environment_uses_is_kept_and_only_detached(aws: Aws, envs: dict[str, Env]) -> None:
    """pr7 registered the certificates; dev imported the same ones for its own things afterwards."""
    pr7, dev = envs["pr7"], envs["dev"]
    mid = pr7.import_manifest(aws.iot, ["A", "B"])
    dev_mid = dev.import_manifest(aws.iot, ["A", "B"])
    dev_before = {name: aws.principals(name) for name in ("A", "B")}

    undo = pr7.rollback(aws.iot, {mid}, delete=True, apply=True)
    undo.manifest(mid)

    state = iot_state(aws)
    assert set(state["things"]) == {"A", "B"}  # pr7-A, pr7-B deleted; dev's things untouched
    assert {name: aws.principals(name) for name in ("A", "B")} == dev_before
    assert list(state["certificates"].values()) == [("ACTIVE", [POLICY])] * 2  # dev's policy stays, pr7's detached
    assert {k["reason"] for k in undo.report.kept} == {"still attached to thing A", "still attached to thing B"}
    assert all(r["status"] == IMPORTED for r in dev.table.entries(dev_mid))


def test_certificates_found_present_are_not_touched_but_this_environments_things_go(aws: Aws,
                                                                                    envs: dict[str, Env]) -> None:
    """dev registered the certificates first: pr7 created only its prefixed things."""
    pr7, dev = envs["pr7"], envs["dev"]
    dev.import_manifest(aws.iot, ["A"])
    mid = pr7.import_manifest(aws.iot, ["A"])
    row = pr7.table.entries(mid)[0]
    assert (row["certificate_registered"], row["thing_created"]) == (False, True)

    pr7.rollback(aws.iot, {mid}, delete=True, apply=True).manifest(mid)

    assert iot_state(aws) == {"things": {"A": [aws.certificate(row["fingerprint"])["certificateArn"]]},
                              "certificates": {row["fingerprint"]: ("ACTIVE", [POLICY])}}


def test_thing_another_live_manifest_names_is_kept_until_teardown(aws: Aws, envs: dict[str, Env]) -> None:
    """A re-upload (second manifest, ALREADY_PRESENT) still uses the first manifest's things."""
    dev = envs["dev"]
    first = dev.import_manifest(aws.iot, ["A"], key="first.txt")
    second = dev.import_manifest(aws.iot, ["A"], key="second.txt")
    before = iot_state(aws)

    undo = dev.rollback(aws.iot, {first}, delete=True, apply=True)
    undo.manifest(first)

    assert iot_state(aws) == before
    assert undo.report.kept == [{"kind": "thing", "name": "A", "reason": f"still used by manifest {second}"}]

    both = dev.rollback(aws.iot, {first, second}, delete=True, apply=True)
    for mid in (first, second):
        both.manifest(mid)
    assert iot_state(aws) == {"things": {}, "certificates": {}}


class CrashOnSecond:
    """An IoT client whose second ``DeleteThing`` dies (a crashed rollback), deterministically."""

    def __init__(self, iot: Any):
        self.iot, self.deletes = iot, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.iot, name)

    def delete_thing(self, **kwargs: Any) -> Any:
        self.deletes += 1
        if self.deletes == 2:
            raise RuntimeError("crash")
        return self.iot.delete_thing(**kwargs)


def test_rollback_resumes_after_a_crash(aws: Aws, envs: dict[str, Env]) -> None:
    pr7 = envs["pr7"]
    mid = pr7.import_manifest(aws.iot, ["A", "B", "C"])

    with pytest.raises(RuntimeError, match="crash"):
        pr7.rollback(CrashOnSecond(aws.iot), {mid}, delete=True, apply=True).manifest(mid)
    statuses = sorted(r["status"] for r in pr7.table.entries(mid))
    assert statuses == [IMPORTED, IMPORTED, ROLLED_BACK]

    resumed = pr7.rollback(aws.iot, {mid}, delete=True, apply=True)
    resumed.manifest(mid)

    assert iot_state(aws) == {"things": {}, "certificates": {}}
    assert resumed.report.counts["rows"] == 2
    assert {r["status"] for r in pr7.table.entries(mid)} == {ROLLED_BACK}


def deployment(aws: Aws, env: Env) -> Deployment:
    outputs = SimpleNamespace(environment=env.name, region=REGION, endpoint_url="", audit_table_name=env.table.table,
                              iot_policy_name=env.policy, thing_type_name=env.thing_type, thing_group_name=env.group)
    return Deployment(outputs)  # type: ignore[arg-type]


def test_teardown_empties_policy_type_and_group_and_leaves_dev_alone(aws: Aws, envs: dict[str, Env]) -> None:
    pr7, dev = envs["pr7"], envs["dev"]
    dev.import_manifest(aws.iot, ["A"])
    pr7.import_manifest(aws.iot, ["A", "B"], key="one.txt")
    pr7.import_manifest(aws.iot, ["B", "C"], key="two.txt")  # B: found present, its own manifest's thing
    dev_before = {"A": aws.principals("A")}

    dry, stack = teardown.teardown(deployment(aws, pr7), apply=False)
    assert stack.as_dict() == {"counts": {}, "attributes_removed": {}, "left_in_type": {}}  # all the rollback's
    assert iot_state(aws)["things"].keys() == {"A", "pr7-A", "pr7-B", "pr7-C"}

    report, stack = teardown.teardown(deployment(aws, pr7), apply=True)

    assert dict(report.counts) == dict(dry.counts)
    assert report.counts["things_deleted"] == 3 and report.counts["certificates_deleted"] == 2  # B and C
    assert iot_state(aws)["things"] == {"A": dev_before["A"]}
    assert aws.iot.list_targets_for_policy(policyName=PR7.iot_policy)["targets"] == []
    assert aws.iot.list_things(thingTypeName=PR7.thing_type)["things"] == []
    # moto keeps a deleted thing's name in its groups (AWS drops the membership with the thing): none exists.
    members = aws.iot.list_things_in_thing_group(thingGroupName=PR7.thing_group)["things"]
    assert [name for name in members if name in iot_state(aws)["things"]] == []
    assert aws.certificate(der_sha256(pem_for("A")))["status"] == "ACTIVE"  # dev's


def test_teardown_sweeps_what_the_rollback_kept(aws: Aws, envs: dict[str, Env]) -> None:
    """A pr7 thing whose certificate another environment attached stays, but leaves pr7's type and group."""
    pr7 = envs["pr7"]
    pr7.import_manifest(aws.iot, ["A"])
    pem = pem_for("Z")
    foreign = aws.iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    aws.iot.attach_thing_principal(thingName="pr7-A", principal=foreign["certificateArn"])
    aws.iot.attach_policy(policyName=PR7.iot_policy, target=foreign["certificateArn"])

    report, stack = teardown.teardown(deployment(aws, pr7), apply=True)

    assert report.kept == [{"kind": "thing", "name": "pr7-A", "reason": "other principals attached: 1"}]
    assert dict(stack.counts) == {"policy_targets_detached": 1, "things_removed_from_type": 1,
                                  "thing_attributes_removed": 1, "things_removed_from_group": 1}
    assert stack.attributes_removed == {"pr7-A": ["thingpress_queued"]}
    thing = aws.thing("pr7-A")
    assert "thingTypeName" not in thing
    assert sorted(thing["attributes"]) == ["thingpress_env", "thingpress_manifest", "thingpress_vendor"]


def import_microchip_device(aws: Aws, env: Env, cn: str) -> str:
    """One Microchip device: its thing carries 6 attributes (4 thingpress, 2 device facts) in the type."""
    mid = manifest_id("microchip", "bucket", f"{env.name}/mc.json", "v1")
    env.table.start_manifest(mid, vendor="microchip", bucket="bucket", key="mc.json", version="v1", etag="e",
                             size=1, environment=env.name)
    env.table.checkpoint(mid, 1, Progress(entries=1, queued=1), state=QUEUED, parse_done=True)
    pem = pem_for(cn)
    message = ImportMessage(manifest_id=mid, vendor="microchip", position=1, thing_name=env.prefix + cn,
                            fingerprint=der_sha256(pem), certificate_pem=pem, queued_at=QUEUED_AT,
                            attributes={"device_id": "0123abcd", "part_number": "ATECC608B"})
    assert env.importer(aws.iot).handle(message.encode(), message_id="mc-1").status == IMPORTED
    assert len(aws.thing(env.prefix + cn)["attributes"]) == 6
    return mid


def attach_foreign_certificate(aws: Aws, thing_name: str, cn: str) -> None:
    """Another principal on the thing: the rollback keeps the thing, the sweep takes it out of the type."""
    foreign = aws.iot.register_certificate_without_ca(certificatePem=pem_for(cn), status="ACTIVE")
    aws.iot.attach_thing_principal(thingName=thing_name, principal=foreign["certificateArn"])


def test_teardown_takes_a_kept_microchip_thing_out_of_the_type_with_three_attributes(
        aws: Aws, envs: dict[str, Env], capsys: pytest.CaptureFixture[str]) -> None:
    """A thing without a type holds 3 attributes: the device facts and the queue time go first (issue 22, 3)."""
    pr7 = envs["pr7"]
    import_microchip_device(aws, pr7, "M")
    attach_foreign_certificate(aws, "pr7-M", "Z")

    report, stack = teardown.teardown(deployment(aws, pr7), apply=True)

    thing = aws.thing("pr7-M")
    assert "thingTypeName" not in thing
    assert thing["attributes"] == {"thingpress_manifest": thing["attributes"]["thingpress_manifest"],
                                   "thingpress_vendor": "microchip", "thingpress_env": "pr7"}
    assert aws.iot.list_things(thingTypeName=PR7.thing_type)["things"] == []  # DeleteThingType may go on
    assert stack.attributes_removed == {"pr7-M": ["thingpress_queued", "device_id", "part_number"]}
    assert (stack.counts["things_removed_from_type"], stack.counts["thing_attributes_removed"]) == (1, 3)

    teardown.print_report(report, stack, False, "pr7")
    assert ("  thing pr7-M leaves the thing type without thingpress_queued, device_id, part_number "
            "(a thing without a type holds at most 3 attributes)\n") in capsys.readouterr().out


def test_teardown_never_removes_attributes_thingpress_did_not_set(aws: Aws, envs: dict[str, Env],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """An operator's 4 attributes cannot all stay on an untyped thing: the thing stays in the type, reported."""
    pr7 = envs["pr7"]
    pr7.import_manifest(aws.iot, ["A"])
    attach_foreign_certificate(aws, "pr7-A", "Z")
    own = {"site": "lyon", "line": "3", "rack": "12", "slot": "4"}
    aws.iot.update_thing(thingName="pr7-A", attributePayload={"attributes": own, "merge": True})

    report, stack = teardown.teardown(deployment(aws, pr7), apply=True)

    thing = aws.thing("pr7-A")
    assert thing["thingTypeName"] == PR7.thing_type and len(thing["attributes"]) == 8  # untouched
    assert stack.left_in_type == {"pr7-A": "4 attributes thingpress did not set; a thing without a type holds "
                                           "at most 3"}
    assert stack.counts["things_left_in_type"] == 1 and "things_removed_from_type" not in stack.counts
    teardown.print_report(report, stack, True, "pr7")
    printed = json.loads(capsys.readouterr().out)
    assert printed["left_in_type"] == stack.left_in_type and printed["stack"]["things_left_in_type"] == 1


def waiting_throttle(detach_propagation: Any) -> Throttle:
    """The rollback's throttle on the propagation's manual clock: each backoff moves the clock (no sleep);
    jitter fixed at half the window, so the waits are 0.5, 1, 2 ... s."""
    clock = detach_propagation.clock
    return rollback_calls.new_throttle(clock=clock, sleep=clock.advance, rng=lambda: 0.5)


def test_rollback_waits_out_the_detach_propagation(aws: Aws, envs: dict[str, Env], detach_propagation) -> None:
    """AWS refuses DeleteCertificate for seconds after DetachThingPrincipal (the emulator's iot_detach): retried."""
    pr7 = envs["pr7"]
    mid = pr7.import_manifest(aws.iot, ["A", "B", "C"])
    detach_propagation.configure(3)
    throttle = waiting_throttle(detach_propagation)

    undo = pr7.rollback(aws.iot, {mid}, delete=True, apply=True, throttle=throttle)
    undo.manifest(mid)

    assert iot_state(aws) == {"things": {}, "certificates": {}}
    assert {r["status"] for r in pr7.table.entries(mid)} == {ROLLED_BACK}
    assert pr7.table.get_summary(mid)["state"] == ROLLED_BACK
    # Every detach first, then the deletes: the first DeleteCertificate refused 3 times (0.5 + 1 + 2 s
    # < 3 s after the detaches), then passed; the other deletes came after the propagation: passed at
    # once. One wait for the run, not one per certificate (deleting row by row: 12 calls, 9 retries).
    assert (throttle.stats.by_api["DeleteCertificate"], throttle.stats.by_api["DeleteThing"]) == (6, 3)
    assert (throttle.stats.retries, throttle.stats.throttled) == (3, 0)


def test_teardown_waits_out_the_detach_propagation(aws: Aws, envs: dict[str, Env], detach_propagation) -> None:
    """Also DeleteThing: a thing whose certificate another environment registered is deleted right after
    its detach (the certificate stays), and is refused until the detach propagated."""
    pr7, dev = envs["pr7"], envs["dev"]
    dev.import_manifest(aws.iot, ["A"])
    pr7.import_manifest(aws.iot, ["A", "B"], key="one.txt")  # A: found present (dev's), B: pr7's
    dev_before = {"A": aws.principals("A")}
    detach_propagation.configure(3)
    throttle = waiting_throttle(detach_propagation)

    report, stack = teardown.teardown(deployment(aws, pr7), apply=True, throttle=throttle)

    assert (report.counts["things_deleted"], report.counts["certificates_deleted"]) == (2, 1)
    assert iot_state(aws)["things"] == {"A": dev_before["A"]}
    assert list(iot_state(aws)["certificates"]) == [der_sha256(pem_for("A"))]  # dev's, kept
    assert aws.iot.list_targets_for_policy(policyName=PR7.iot_policy)["targets"] == []
    # Every detach first, then the deletes: the first of them (pr7-A's thing or B's certificate, whichever
    # row sorts first) refused 3 times, then the other two pass at once. Row by row, each waited out its
    # own detach: 9 delete calls, 6 retries.
    deletes = throttle.stats.by_api["DeleteThing"] + throttle.stats.by_api["DeleteCertificate"]
    assert (deletes, throttle.stats.retries) == (6, 3)
