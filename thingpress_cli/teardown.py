"""``thingpress teardown --env NAME``: undo every import of an environment, then ready its stack for destroy.

1. Every manifest in the environment's audit table is rolled back with ``delete``
   (``thingpress_cli.rollback``; the whole environment is the scope, so its own
   manifests never keep each other's things). What another environment still
   uses is kept, only detached from this one.
2. The IoT resources the stack created are emptied so that ``cdktf destroy`` can
   delete them as AWS allows:

   * the device policy is detached from every remaining target
     (``ListTargetsForPolicy`` / ``DetachPolicy``): DeletePolicy is refused while
     the policy is attached
     (https://docs.aws.amazon.com/iot/latest/apireference/API_DeletePolicy.html);
   * every thing still of the thing type (kept above, or another environment's)
     leaves it (``UpdateThing removeThingType``, dropping ``thingpress_queued`` so
     that it keeps to the 3 attributes of an untyped thing): DeleteThingType is
     refused while things use the type. The deprecation it also needs, and the
     5 minutes AWS then makes it wait, are the Terraform provider's delete
     (``DeprecateThingType``, then ``DeleteThingType`` retried; locally the
     emulator's deprecation wait is a setting the local target shortens)
     (https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteThingType.html);
   * the thing group is emptied (``RemoveThingFromThingGroup``).

   Resources named by configuration (an existing policy, type or group) are not
   the stack's and are left alone.

Dry run by default; ``--yes`` applies. ``make destroy ENV=NAME`` and
``thingpress local destroy --env NAME`` run it with ``--yes`` before ``cdktf destroy``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from stacks.naming import Names
from thingpress.importer import ATTR_QUEUED
from thingpress_cli import rollback

REASON = "environment teardown"


def _pages(call: Any, key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    while True:
        page = call(**kwargs)
        items.extend(page.get(key, []))
        token = page.get("nextToken") or page.get("nextMarker")
        if not token:
            return items
        kwargs["nextToken" if "nextToken" in page else "marker"] = token


def teardown(deployment: Any, *, apply: bool) -> tuple[rollback.Report, Counter[str]]:
    """Roll back every manifest of the deployment, then empty its policy, thing type and group."""
    scope = {row["manifest_id"] for row in deployment.manifest_summaries() if row.get("manifest_id")}
    undo = rollback.engine(deployment, scope, delete=True, apply=apply, reason=REASON)
    for mid in sorted(scope):
        undo.manifest(mid)
    return undo.report, sweep_stack(deployment, undo, apply=apply)


def sweep_stack(deployment: Any, undo: rollback.Rollback, *, apply: bool) -> Counter[str]:
    outputs = deployment.outputs
    names = Names(outputs.environment, outputs.region)
    iot, call = undo.iot, undo.throttle.call
    counts: Counter[str] = Counter()

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
            if thing["thingName"] in undo.deleted_things:
                continue
            counts["things_removed_from_type"] += 1
            if apply:
                update: dict[str, Any] = {"thingName": thing["thingName"], "removeThingType": True}
                if ATTR_QUEUED in (thing.get("attributes") or {}):
                    update["attributePayload"] = {"attributes": {ATTR_QUEUED: ""}, "merge": True}
                call("UpdateThing", iot.update_thing, **update)

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
    return counts


def register(subparsers: Any) -> None:
    from thingpress_cli.deployment import Deployment

    parser = subparsers.add_parser("teardown", help="undo every import of an environment before its destroy",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--yes", action="store_true", help="apply (default: only print what would change)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    Deployment.add_arguments(parser)
    parser.set_defaults(func=cmd_teardown)


def cmd_teardown(args: argparse.Namespace) -> int:
    from thingpress_cli.deployment import Deployment, DeploymentError

    try:
        deployment = Deployment.from_args(args)
        report, stack = teardown(deployment, apply=args.yes)
    except (DeploymentError, LookupError) as exc:
        sys.stderr.write(f"thingpress teardown: {exc}\n")
        return 2
    rollback.print_report(report, args.json, f"teardown {deployment.outputs.environment}",
                          {"environment": deployment.outputs.environment, "stack": dict(sorted(stack.items()))})
    return 0
