"""AWS IoT registry limits refused as AWS refuses them (thingpress_cli.local.emulator.iot_rules, issue 22).

In-process moto (the unit tests' ``mock_aws``) for each rule: the refusal (exception
code, HTTP status, message) and the state it leaves; then the emulator process, to
show the server gets the same rules.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from thingpress_cli.local.emulator import guard, iot_rules, patches


def refusal(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    """(error code, HTTP status, message) of a call that must be refused."""
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    error = refused.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], error["Error"].get("Message", "")


def attributes(count: int, prefix: str = "a") -> dict[str, str]:
    return {f"{prefix}{i}": str(i) for i in range(count)}


def test_a_thing_without_a_type_holds_three_attributes_and_one_with_a_type_fifty(iot):
    assert refusal(iot.create_thing, thingName="untyped", attributePayload={"attributes": attributes(4)}) == (
        "InvalidRequestException", 400, "Thing untyped would have 4 attributes; a thing without a thing type can "
                                        "have at most 3")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName="untyped")  # nothing created
    iot.create_thing(thingName="untyped", attributePayload={"attributes": attributes(3)})

    iot.create_thing_type(thingTypeName="rules-type")
    code, status, message = refusal(iot.create_thing, thingName="typed", thingTypeName="rules-type",
                                    attributePayload={"attributes": attributes(51)})
    assert (code, status) == ("InvalidRequestException", 400) and "can have at most 50" in message
    iot.create_thing(thingName="typed", thingTypeName="rules-type", attributePayload={"attributes": attributes(50)})

    code, _, message = refusal(iot.update_thing, thingName="untyped",
                               attributePayload={"attributes": {"extra": "x"}, "merge": True})
    assert code == "InvalidRequestException" and "would have 4 attributes" in message
    assert iot.describe_thing(thingName="untyped")["attributes"] == attributes(3)


def test_update_thing_is_checked_on_the_thing_it_would_leave(iot):
    """removeThingType on a thing with 5 attributes is refused, and the thing keeps its type (teardown, issue 22)."""
    iot.create_thing_type(thingTypeName="rules-type")
    device = {"thingpress_manifest": "m", "thingpress_vendor": "microchip", "thingpress_env": "pr7",
              "thingpress_queued": "t", "device_id": "01"}
    iot.create_thing(thingName="kept", thingTypeName="rules-type", attributePayload={"attributes": device})

    assert refusal(iot.update_thing, thingName="kept", removeThingType=True) == (
        "InvalidRequestException", 400, "Thing kept would have 5 attributes; a thing without a thing type can have "
                                        "at most 3")
    thing = iot.describe_thing(thingName="kept")
    assert (thing["thingTypeName"], thing["attributes"]) == ("rules-type", device)
    # merge with empty values removes attributes; what is left is what is checked
    drop = {"thingpress_queued": "", "device_id": ""}
    iot.update_thing(thingName="kept", removeThingType=True, attributePayload={"attributes": drop, "merge": True})
    thing = iot.describe_thing(thingName="kept")
    assert "thingTypeName" not in thing and sorted(thing["attributes"]) == [
        "thingpress_env", "thingpress_manifest", "thingpress_vendor"]
    # a type taken on again allows 50; a replacement (no merge) is counted as given
    iot.update_thing(thingName="kept", thingTypeName="rules-type", attributePayload={"attributes": attributes(7)})
    assert iot.describe_thing(thingName="kept")["attributes"] == attributes(7)


def test_a_thing_is_in_at_most_ten_groups(iot):
    iot.create_thing(thingName="member")
    for index in range(11):
        iot.create_thing_group(thingGroupName=f"fleet-{index}")
    for index in range(10):
        iot.add_thing_to_thing_group(thingGroupName=f"fleet-{index}", thingName="member")
    iot.add_thing_to_thing_group(thingGroupName="fleet-3", thingName="member")  # already in it: no change

    assert refusal(iot.add_thing_to_thing_group, thingGroupName="fleet-10", thingName="member") == (
        "InvalidRequestException", 400, "Cannot add thing member to thing group fleet-10: it is in 10 thing groups, "
                                        "the most a thing can be in is 10")
    assert len(iot.list_thing_groups_for_thing(thingName="member")["thingGroups"]) == 10
    assert iot.list_things_in_thing_group(thingGroupName="fleet-10")["things"] == []
    with pytest.raises(iot.exceptions.InvalidRequestException):  # the same rule through UpdateThingGroupsForThing
        iot.update_thing_groups_for_thing(thingName="member", thingGroupsToAdd=["fleet-10"])


def test_a_thing_is_in_one_group_of_a_hierarchy(iot):
    iot.create_thing(thingName="member")
    iot.create_thing_group(thingGroupName="site")
    iot.create_thing_group(thingGroupName="site-line-1", parentGroupName="site")
    iot.create_thing_group(thingGroupName="site-line-2", parentGroupName="site")
    iot.create_thing_group(thingGroupName="elsewhere")
    iot.add_thing_to_thing_group(thingGroupName="site-line-1", thingName="member")

    assert refusal(iot.add_thing_to_thing_group, thingGroupName="site-line-2", thingName="member") == (
        "InvalidRequestException", 400, "Cannot add thing member to thing group site-line-2: it is in thing group "
                                        "site-line-1 of the same hierarchy (root site)")
    code, _, message = refusal(iot.add_thing_to_thing_group, thingGroupName="site", thingName="member")
    assert code == "InvalidRequestException" and "same hierarchy" in message
    iot.add_thing_to_thing_group(thingGroupName="elsewhere", thingName="member")  # another hierarchy
    assert sorted(g["groupName"] for g in iot.list_thing_groups_for_thing(thingName="member")["thingGroups"]) == [
        "elsewhere", "site-line-1"]


def test_no_thing_is_added_to_a_dynamic_group(iot):
    created = iot.create_dynamic_thing_group(thingGroupName="connected", queryString="connectivity.connected:true")
    assert (created["thingGroupName"], created["indexName"], created["queryString"]) == (
        "connected", "AWS_Things", "connectivity.connected:true")
    described = iot.describe_thing_group(thingGroupName="connected")
    assert (described["queryString"], described["status"]) == ("connectivity.connected:true", "ACTIVE")
    iot.create_thing(thingName="member")

    assert refusal(iot.add_thing_to_thing_group, thingGroupName="connected", thingName="member") == (
        "InvalidRequestException", 400, "Cannot add thing member to dynamic thing group connected: the things in a "
                                        "dynamic thing group are those its query matches")
    assert iot.list_things_in_thing_group(thingGroupName="connected")["things"] == []
    code, _, message = refusal(iot.create_thing_group, thingGroupName="below", parentGroupName="connected")
    assert code == "InvalidRequestException" and "can't be part of a hierarchy" in message

    iot.delete_dynamic_thing_group(thingGroupName="connected")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName="connected")


def test_the_rules_are_registered_with_the_moto_guard():
    assert set(iot_rules.PATCHED) <= set(patches.PATCHED)
    guard.check(patches.PATCHED)


def test_the_emulator_refuses_as_in_process_moto_does(aws):
    """The emulator process applies the same rules (emulator.patches.apply)."""
    iot = aws("iot")
    iot.create_thing_type(thingTypeName="rules-emulator-type")
    iot.create_thing(thingName="rules-emulator-thing", thingTypeName="rules-emulator-type",
                     attributePayload={"attributes": attributes(5)})
    code, status, _ = refusal(iot.update_thing, thingName="rules-emulator-thing", removeThingType=True)
    assert (code, status) == ("InvalidRequestException", 400)
    assert iot.describe_thing(thingName="rules-emulator-thing")["thingTypeName"] == "rules-emulator-type"

    iot.create_dynamic_thing_group(thingGroupName="rules-emulator-dynamic", queryString="thingName:x*")
    code, status, _ = refusal(iot.add_thing_to_thing_group, thingGroupName="rules-emulator-dynamic",
                              thingName="rules-emulator-thing")
    assert (code, status) == ("InvalidRequestException", 400)
