"""The checks over every policy of the stack that need no request (``make iam-check``'s step 4).

One job: each resource ARN names a resource type of each action of its statement (an
ARN IAM ignores is an error), each condition key exists for the statement's actions, and
each granted action is exercised by a request or excused (:mod:`.excuses`).
"""

from __future__ import annotations

import re
from typing import Any

from thingpress_cli.iamcheck.data import IamData
from thingpress_cli.iamcheck.excuses import EVERY_ACTION, UNEXERCISED, holder_of
from thingpress_cli.iamcheck.report import Report
from thingpress_cli.iamcheck.stack import Stack

#: A policy variable in a resource (``${iot:Connection.Thing.ThingName}``): one path segment.
POLICY_VARIABLE = re.compile(r"\$\{[^}]+\}")
#: Condition keys of AWS IoT Core policies (devices), not of IAM: the IoT developer guide,
#: "Thing policy variables" (``iot:Connection.Thing.IsAttached``).
IOT_POLICY_KEYS = ("iot:Connection.",)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def static_checks(stack: Stack, data: IamData, exercised: set[tuple[str, str]], report: Report) -> None:
    roles = {fn.role_arn.rsplit("/", 1)[-1]: fn.role_arn for fn in stack.functions.values()}
    excused = {key for excuse in UNEXERCISED for key in excuse.keys()}
    for name, policy in stack.policies().items():
        for st in _listed(policy["Statement"]):
            sid = st.get("Sid", "?")
            actions = [a for a in _listed(st["Action"]) if "*" not in a]  # Deny: service wildcards
            resources = [stack.resolve(r) for r in _listed(st.get("Resource", "*"))]
            keys = [k for op in st.get("Condition", {}).values() for k in op]
            for key in actions:
                action = data.action(key)
                if action is None:
                    report.unknown.append(f"{name} {sid}: {key} is no IAM action")
                    continue
                for arn in resources:
                    if arn == "*":
                        continue
                    if not action.resource_types or action.resource_type_of(POLICY_VARIABLE.sub("x", arn)) is None:
                        report.ignored_arns.append(
                            f"{name} {sid}: {key} ignores {arn} (its resource types: "
                            f"{[t.name for t in action.resource_types] or 'none: Resource must be *'})")
                for condition_key in keys:
                    if name.startswith("aws_iot_policy") and condition_key.startswith(IOT_POLICY_KEYS):
                        continue
                    if not action.allows_condition_key(condition_key):
                        report.unknown.append(f"{name} {sid}: condition key {condition_key} does not exist for {key}")
            if st["Effect"] != "Allow" or name.startswith("aws_iot_policy"):
                continue  # device policies are exercised by devices
            principal = st.get("Principal")
            if name.startswith("role "):
                who = [roles.get(name.split(" ", 1)[1], name)]
            elif isinstance(principal, dict) and "Service" in principal:
                who = _listed(principal["Service"])
            else:
                who = ["account"]
            holder = holder_of(name)
            for key in actions:
                if any((w, key) in exercised for w in who):
                    continue
                if {(holder, sid, key), (holder, sid, EVERY_ACTION)} & excused:
                    report.excused.append((holder, sid, key))
                    continue
                report.unused.append(f"{name} {sid}: {key} is granted to {', '.join(who)} and never exercised")
