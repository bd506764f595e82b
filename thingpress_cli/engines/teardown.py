"""The teardown engine: undoes every import of an environment, then readies its stack for destroy.

1. Every manifest in the environment's audit table is rolled back with ``delete``
   (``thingpress_cli.engines.rollback``; the whole environment is the scope, so its own
   manifests never keep each other's things). What another environment still
   uses is kept, only detached from this one.
2. The IoT resources the stack created are emptied so that ``cdktf destroy`` can
   delete them as AWS allows:

   * the device policy is detached from every remaining target
     (``ListTargetsForPolicy`` / ``DetachPolicy``): DeletePolicy is refused while
     the policy is attached
     (https://docs.aws.amazon.com/iot/latest/apireference/API_DeletePolicy.html);
   * every thing still of the thing type (kept above, or another environment's)
     leaves it (``UpdateThing removeThingType``): DeleteThingType is refused while
     things use the type. The deprecation it also needs, and the 5 minutes AWS then
     makes it wait, are the Terraform provider's delete (``DeprecateThingType``, then
     ``DeleteThingType`` retried; locally the emulator's deprecation wait is a
     setting the local target shortens)
     (https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteThingType.html).
     A thing without a type holds at most 3 attributes ("Things without a thing
     type can have up to three attributes",
     https://docs.aws.amazon.com/iot/latest/developerguide/thing-types.html), and
     AWS refuses an ``UpdateThing`` that would leave more; an imported thing of the
     type carries up to 6 (a Microchip device: ``thingpress_manifest``,
     ``thingpress_vendor``, ``thingpress_env``, ``thingpress_queued``,
     ``device_id``, ``part_number``). So a thing with more than 3 first loses the
     attributes thingpress set, in :data:`UNTYPED_DROP_ORDER` (the queue time, the
     device facts, then vendor, environment and manifest) until 3 are left, by an
     ``UpdateThing`` with those attributes empty (``merge``: "To remove an attribute,
     call UpdateThing with an empty attribute value",
     https://docs.aws.amazon.com/iot/latest/apireference/API_AttributePayload.html),
     and only then leaves the type: two calls, each leaving a thing AWS accepts
     (the API reference does not say which state it checks when one call does
     both). Attributes thingpress did not set are never removed: a thing with more
     than 3 of those stays in the type, reported (``things_left_in_type``), and
     ``cdktf destroy`` will fail on the thing type until an operator decides. The
     output names every thing whose attributes were removed, and which;
   * the thing group is emptied (``RemoveThingFromThingGroup``).

   Resources named by configuration (an existing policy, type or group) are not
   the stack's and are left alone.

Dry run by default; ``--yes`` applies. ``make destroy ENV=NAME`` and
``thingpress local destroy --env NAME`` run it with ``--yes`` before ``cdktf destroy``.
An AWS error stops it as it stops a rollback (``rollback_calls.Stopped``: the refusals
of a detach still propagating are retried first): the command says what was done
and how to resume, and exits 1.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stacks.naming import Names
from thingpress.attributes import DEVICE_ATTRIBUTES, MAX_WITHOUT_TYPE
from thingpress.importer.rules import ATTR_ENV, ATTR_MANIFEST, ATTR_QUEUED, ATTR_VENDOR
from thingpress.throttle import Throttle
from thingpress_cli.engines import rollback, rollback_calls, rollback_report

REASON = "environment teardown"
#: The attributes thingpress sets on a thing of its type, in the order a thing leaving the type
#: loses them (only as many as it must to keep to an untyped thing's 3): the queue time, the
#: device facts (``thingpress.attributes``), then the vendor, environment and manifest.
UNTYPED_DROP_ORDER = (ATTR_QUEUED, *sorted({name for pairs in DEVICE_ATTRIBUTES.values() for _, name in pairs}),
                      ATTR_VENDOR, ATTR_ENV, ATTR_MANIFEST)


@dataclass
class Sweep:
    """What emptying the stack's IoT resources did (or, dry, would do)."""

    counts: Counter[str] = field(default_factory=Counter)
    #: thing -> the attributes removed so that it keeps to 3 without the thing type.
    attributes_removed: dict[str, list[str]] = field(default_factory=dict)
    #: thing -> why it stays in the thing type (``DeleteThingType`` is refused while it does).
    left_in_type: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(sorted(self.counts.items())), "attributes_removed": self.attributes_removed,
                "left_in_type": self.left_in_type}


def attributes_to_drop(attributes: dict[str, str]) -> list[str] | None:
    """The attributes a thing must lose to leave its type (at most 3 kept), or None if that would take
    attributes thingpress did not set."""
    excess = len(attributes) - MAX_WITHOUT_TYPE
    drop = [name for name in UNTYPED_DROP_ORDER if name in attributes][:max(excess, 0)]
    return drop if len(drop) == max(excess, 0) else None


def _pages(call: Any, key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    while True:
        page = call(**kwargs)
        items.extend(page.get(key, []))
        token = page.get("nextToken") or page.get("nextMarker")
        if not token:
            return items
        kwargs["nextToken" if "nextToken" in page else "marker"] = token


def teardown(deployment: Any, *, apply: bool, throttle: Throttle | None = None) -> tuple[rollback_report.Report, Sweep]:
    """Roll back every manifest of the deployment, then empty its policy, thing type and group.

    An AWS error stops it with ``rollback_calls.Stopped`` (what was done, where)."""
    undo: rollback.Rollback | None = None
    try:
        scope = {row["manifest_id"] for row in deployment.manifest_summaries() if row.get("manifest_id")}
        undo = rollback.engine(deployment, scope, delete=True, apply=apply, reason=REASON, throttle=throttle)
        undo.manifests(sorted(scope))  # every detach of every manifest, then the deletes
        return undo.report, sweep_stack(deployment, undo, apply=apply)
    except rollback_calls.AWS_ERRORS as error:
        raise rollback_calls.Stopped(error, undo) from error


def sweep_stack(deployment: Any, undo: rollback.Rollback, *, apply: bool) -> Sweep:
    outputs = deployment.outputs
    names = Names(outputs.environment, outputs.region)
    iot, call = undo.iot, undo.throttle.call
    sweep = Sweep()
    counts = sweep.counts
    undo.at = "emptying the stack's policy, thing type and thing group"

    if outputs.iot_policy_name == names.iot_policy:
        targets = _pages(lambda **kw: call("ListTargetsForPolicy", iot.list_targets_for_policy, **kw), "targets",
                         policyName=outputs.iot_policy_name)
        for target in targets:
            if (outputs.iot_policy_name, target) in undo.detached_policies:
                continue  # the rollback detached it (dry run: not yet)
            counts["policy_targets_detached"] += 1
            if apply:
                call("DetachPolicy", iot.detach_policy, policyName=outputs.iot_policy_name, target=target)

    if outputs.thing_type_name == names.thing_type:
        typed = _pages(lambda **kw: call("ListThings", iot.list_things, **kw), "things",
                       thingTypeName=outputs.thing_type_name)
        for thing in typed:
            name = thing["thingName"]
            if name in undo.deleted_things:
                continue
            attributes = thing.get("attributes") or {}
            drop = attributes_to_drop(attributes)
            if drop is None:
                foreign = len([a for a in attributes if a not in UNTYPED_DROP_ORDER])
                counts["things_left_in_type"] += 1
                sweep.left_in_type[name] = (f"{foreign} attributes thingpress did not set; a thing without a type "
                                            f"holds at most {MAX_WITHOUT_TYPE}")
                continue
            counts["things_removed_from_type"] += 1
            if drop:
                counts["thing_attributes_removed"] += len(drop)
                sweep.attributes_removed[name] = drop
            if apply:
                if drop:
                    call("UpdateThing", iot.update_thing, thingName=name,
                         attributePayload={"attributes": dict.fromkeys(drop, ""), "merge": True})
                call("UpdateThing", iot.update_thing, thingName=name, removeThingType=True)

    if outputs.thing_group_name == names.thing_group:
        members = _pages(lambda **kw: call("ListThingsInThingGroup", iot.list_things_in_thing_group, **kw),
                         "things", thingGroupName=outputs.thing_group_name)
        for name in members:
            if name in undo.deleted_things:
                continue
            counts["things_removed_from_group"] += 1
            if apply:
                call("RemoveThingFromThingGroup", iot.remove_thing_from_thing_group,
                     thingGroupName=outputs.thing_group_name, thingName=name)
    undo.at = None
    return sweep


def print_report(report: rollback_report.Report, sweep: Sweep, as_json: bool, environment: str) -> None:
    """The rollback's report, the stack's counts, and what changed on (or stays in) the thing type."""
    extra = {"environment": environment, "stack": dict(sorted(sweep.counts.items())),
             "attributes_removed": sweep.attributes_removed, "left_in_type": sweep.left_in_type}
    rollback_report.print_report(report, as_json, f"teardown {environment}", extra)
    if as_json:
        return
    lines = [f"  thing {name} leaves the thing type without {', '.join(drop)} "
             f"(a thing without a type holds at most {MAX_WITHOUT_TYPE} attributes)"
             for name, drop in sorted(sweep.attributes_removed.items())]
    lines += [f"  thing {name} stays in the thing type: {why} (DeleteThingType is refused while it does)"
              for name, why in sorted(sweep.left_in_type.items())]
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
