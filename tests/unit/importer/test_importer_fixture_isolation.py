"""The ``aws`` fixture: every test starts from the same state, whatever the previous test left.

The IoT policy, thing type, thing group and audit table are created once per
process and each test gets a fresh copy of moto's state
(``aws_fixtures.prepared_aws``) and the kept clients as created. The first test
below imports a certificate (certificate, thing, attachments, group membership,
audit rows) and leaves more behind; the second one (pytest runs a module's tests
in order) finds none of it.
"""

from __future__ import annotations

import pytest
from aws_fixtures import MotoState, leave_failing_hooks, prepared_state
from importer_helpers import POLICY, THING_GROUP, THING_TYPE, Aws, CallRecorder, MessageFactory

from thingpress.audit.states import IMPORTED

#: In order, on one worker under pytest-xdist (ungrouped tests go out one by one).
pytestmark = pytest.mark.xdist_group("fixture-isolation-importer")


def test_a_test_leaves_certificates_things_rows_resources_and_hooks_behind(aws: Aws, message: MessageFactory) -> None:
    mid = aws.start_manifest(1)
    outcome = aws.importer(policy_names=(POLICY,)).handle(message(mid, 1).encode(), message_id="m-1")
    assert outcome.status == IMPORTED
    assert aws.group_things() == ["Device-1"]
    aws.iot.create_thing(thingName="left-behind")
    aws.iot.create_policy(policyName="left-behind", policyDocument='{"Version":"2012-10-17","Statement":[]}')
    aws.iot.create_thing_type(thingTypeName="left-behind")
    aws.iot.deprecate_thing_type(thingTypeName=THING_TYPE)
    aws.iot.update_thing_group(thingGroupName=THING_GROUP, thingGroupProperties={"thingGroupDescription": "changed"})
    CallRecorder(aws.dynamodb, "dynamodb")
    leave_failing_hooks(iot=aws.iot, dynamodb=aws.dynamodb)
    aws.iot.left_behind = True

    with pytest.raises(AssertionError, match="earlier test"):
        aws.iot.list_things()


def test_the_next_test_finds_the_policy_type_group_and_an_empty_table_only(aws: Aws) -> None:
    assert not hasattr(aws.iot, "left_behind")
    assert aws.recorder.calls == []
    assert aws.iot.list_certificates()["certificates"] == []
    assert aws.iot.list_things()["things"] == []
    assert [p["policyName"] for p in aws.iot.list_policies()["policies"]] == [POLICY]
    assert aws.iot.list_targets_for_policy(policyName=POLICY)["targets"] == []
    types = aws.iot.list_thing_types()["thingTypes"]
    assert [(t["thingTypeName"], t["thingTypeMetadata"]["deprecated"]) for t in types] == [(THING_TYPE, False)]
    assert [g["groupName"] for g in aws.iot.list_thing_groups()["thingGroups"]] == [THING_GROUP]
    assert "thingGroupDescription" not in aws.iot.describe_thing_group(thingGroupName=THING_GROUP)[
        "thingGroupProperties"]
    assert aws.group_things() == []
    assert aws.dynamodb.list_tables()["TableNames"] == [aws.audit.table]
    assert aws.dynamodb.scan(TableName=aws.audit.table)["Items"] == []
    # The fixture's own recorder is the one hook on the IoT client: it saw exactly these calls.
    assert aws.recorder.calls == ["ListCertificates", "ListThings", "ListPolicies", "ListTargetsForPolicy",
                                  "ListThingTypes", "ListThingGroups", "DescribeThingGroup", "ListThingsInThingGroup"]


def test_each_test_gets_a_copy_that_shares_nothing_with_the_kept_state(aws: Aws) -> None:
    live = MotoState.live()
    assert {bd.service_name for bd in live.backend_dicts()} >= {"iot", "dynamodb"}
    assert live.shared_with(prepared_state("importer")) == []
