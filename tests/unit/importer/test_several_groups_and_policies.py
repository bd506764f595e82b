"""Several thing groups and policies (THINGPRESS_THING_GROUP / THINGPRESS_POLICY_NAMES lists), in-process IoT."""

from __future__ import annotations

from importer_helpers import POLICY, THING_GROUP

from thingpress.audit.states import IMPORTED
from thingpress.settings import FunctionSettings, THING_GROUP as THING_GROUP_SETTING


def test_the_thing_joins_every_group_and_the_certificate_gets_every_policy(aws, message):
    for group in ("fleet-a", "fleet-b"):
        aws.iot.create_thing_group(thingGroupName=group)
    aws.iot.create_policy(policyName="ota", policyDocument='{"Version":"2012-10-17","Statement":[]}')
    mid = aws.start_manifest(1)
    msg = message(mid, 1)
    importer = aws.importer(thing_groups=(THING_GROUP, "fleet-a", "fleet-b"), policy_names=(POLICY, "ota"))

    outcome = importer.handle(msg.encode(), message_id="m-1")

    assert outcome.status == IMPORTED
    for group in (THING_GROUP, "fleet-a", "fleet-b"):
        assert aws.iot.list_things_in_thing_group(thingGroupName=group)["things"] == ["Device-1"]
    cert_arn = aws.certificate(msg.fingerprint)["certificateArn"]
    assert sorted(aws.policies(cert_arn)) == sorted([POLICY, "ota"])


def test_the_group_setting_is_a_comma_separated_list_the_stacks_own_first():
    env = {"THINGPRESS_AUDIT_TABLE": "t", THING_GROUP_SETTING: "thingpress-dev-devices,fleet-a,fleet-b"}
    parsed = FunctionSettings.from_env(env)
    assert parsed.thing_groups == ("thingpress-dev-devices", "fleet-a", "fleet-b")
    assert parsed.thing_group == "thingpress-dev-devices"
    assert parsed.every_thing_group == parsed.thing_groups
    assert FunctionSettings(audit_table="t", thing_group="g").every_thing_group == ("g",)
    assert FunctionSettings.from_env({"THINGPRESS_AUDIT_TABLE": "t"}).every_thing_group == ()
