"""The IoT side of every imported thing: its policies and how they are attached, type, groups and name.

These settings decide which IoT resources the stack creates or only names, and the importer's
IoT calls per certificate. Each existing resource is checked with the name pattern of its own IoT
API page (``thingpress.patterns``, the one definition the functions and the CLI use too), and the
created policy and group (``stacks.naming.Names``) may not be named again as existing ones.

=====================================  ===========================================================
variable                               meaning (default)
=====================================  ===========================================================
THINGPRESS_IOT_POLICY_NAME             existing IoT policies (comma-separated) attached besides the one
                                       the stack always creates, as THINGPRESS_POLICY_ATTACHMENT says;
                                       each name once, 1-128 of [\\w+=,.@-] (IoT's policyName)
THINGPRESS_IOT_POLICY_DOCUMENT         JSON file (or inline JSON) for the created policy (least privilege)
THINGPRESS_THING_TYPE                  existing thing type (none: the stack creates one)
THINGPRESS_THING_GROUP                 existing thing groups (comma-separated) every thing also joins,
                                       besides the one the stack always creates (that one carries the
                                       policies in ``thing-group`` mode); each name once, 1-128 of
                                       [a-zA-Z0-9:_-], at most 9 (a thing is in at most 10 groups,
                                       one per hierarchy, never a dynamic one)
THINGPRESS_POLICY_ATTACHMENT           ``thing-group``: the device policy is attached once, to the thing
                                       group, and each thing inherits it (4 IoT calls per certificate,
                                       no iot:AttachPolicy grant); ``certificate``: attached to each
                                       certificate (5 calls) (``thing-group``)
THINGPRESS_THING_PREFIX                prepended to every vendor thing name (``pr<N>-`` for preview
                                       suffixes ``pr<N>``, none otherwise; ``none`` for no prefix);
                                       checked against the 128-character thing-name limit
THINGPRESS_THING_NAME_TEMPLATE         each device's thing name from ``{prefix}`` (the prefix above),
                                       ``{vendor}``, ``{name}`` (the vendor's name for the device),
                                       ``{serial}`` (certificate serial, hex), ``{fingerprint}``
                                       (certificate id) (``{prefix}{name}``: today's names); refused at
                                       synth if a placeholder is unknown, no ``{name}``/``{serial}``/
                                       ``{fingerprint}`` is used, the text holds characters IoT refuses
                                       or a name could exceed 128 characters (``thingpress.thing_names``)
=====================================  ===========================================================

The policy attachment has a reader of its own, :func:`read_policy_attachment`, because its errors
have always been listed after the functions' timeouts (``StackConfig.from_env`` keeps that order).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from thingpress import patterns, settings, thing_names

from stacks.config.reader import Reader
from stacks.naming import Names, default_thing_prefix, thing_prefix_problem

POLICY_ATTACHMENTS = ("thing-group", "certificate")
#: AWS IoT: "You can add a thing to a maximum of 10 groups. But you can't add a thing to more than one
#: group in the same hierarchy" (https://docs.aws.amazon.com/iot/latest/developerguide/thing-groups.html).
#: The importer adds every thing to the stack's group and to each of THINGPRESS_THING_GROUP, so more than
#: 10 in all would have every certificate refused at its 11th group, delivery after delivery, into the DLQ.
#: The stack's own group is a root group (no parent) that no configured group can belong to before the
#: stack creates it; how the configured groups relate to each other (same hierarchy, dynamic) is known
#: only to IoT, and refused by it at the first import (the local emulator refuses the same way:
#: ``thingpress_cli.local.emulator.iot_rules``).
MAX_THING_GROUPS_PER_THING = 10


def read(r: Reader, suffix: str, region: str) -> dict[str, Any]:
    """``iot_policy_document``, ``thing_type``, ``iot_policy_names``, ``thing_groups``, ``thing_prefix``,
    ``thing_name_template``: the resources for deployment ``suffix`` in ``region``, then the names."""
    return {**_resources(r, Names(suffix, region)), **_thing_names(r, suffix)}


def read_policy_attachment(r: Reader) -> dict[str, Any]:
    """``policy_attachment``."""
    return {"policy_attachment": r.choice("THINGPRESS_POLICY_ATTACHMENT", POLICY_ATTACHMENTS, "thing-group")}


def _resources(r: Reader, names: Names) -> dict[str, Any]:
    policy_doc = r.get("THINGPRESS_IOT_POLICY_DOCUMENT")
    if policy_doc:
        policy_doc = _policy_document(policy_doc, r.errors)
    thing_type = r.get("THINGPRESS_THING_TYPE")
    if thing_type and not patterns.THING_TYPE_NAME.fullmatch(thing_type):
        r.errors.append(f"THINGPRESS_THING_TYPE: {thing_type!r} must be "
                        f"{patterns.described(patterns.THING_TYPE_NAME)}")
    policy_names = _existing_names("THINGPRESS_IOT_POLICY_NAME", r.get("THINGPRESS_IOT_POLICY_NAME"),
                                   names.iot_policy, patterns.POLICY_NAME, r.errors)
    thing_groups = _existing_names("THINGPRESS_THING_GROUP", r.get("THINGPRESS_THING_GROUP"), names.thing_group,
                                   patterns.THING_GROUP_NAME, r.errors)
    if 1 + len(thing_groups) > MAX_THING_GROUPS_PER_THING:
        r.errors.append(f"THINGPRESS_THING_GROUP: {len(thing_groups)} groups and the stack's own make "
                        f"{1 + len(thing_groups)}, but a thing can be in at most {MAX_THING_GROUPS_PER_THING} "
                        f"thing groups: name at most {MAX_THING_GROUPS_PER_THING - 1}")
    return {"iot_policy_document": policy_doc, "thing_type": thing_type, "iot_policy_names": policy_names,
            "thing_groups": thing_groups}


def _thing_names(r: Reader, suffix: str) -> dict[str, Any]:
    raw_prefix = r.get(settings.THING_PREFIX)
    thing_prefix = "" if raw_prefix.lower() == "none" else (raw_prefix or default_thing_prefix(suffix))
    prefix_problem = thing_prefix_problem(thing_prefix)
    if prefix_problem:
        r.errors.append(f"{settings.THING_PREFIX}: {prefix_problem}")
    name_template = r.get(settings.THING_NAME_TEMPLATE) or thing_names.DEFAULT_TEMPLATE
    # (a prefix that is itself wrong is reported once, above)
    template_problem = None if prefix_problem else thing_names.template_problem(name_template, thing_prefix)
    if template_problem:
        r.errors.append(f"{settings.THING_NAME_TEMPLATE}: {template_problem}")
    return {"thing_prefix": thing_prefix, "thing_name_template": name_template}


def _existing_names(setting: str, raw: str, created: str, pattern: re.Pattern[str],
                    errors: list[str]) -> tuple[str, ...]:
    """Comma-separated names of existing IoT resources: each valid (``pattern``: the name's own, from
    ``thingpress.patterns``), each once, not the created one."""
    if not raw:
        return ()
    names = tuple(part.strip() for part in raw.split(","))
    for name in names:
        if not pattern.fullmatch(name):
            errors.append(f"{setting}: {name!r} must be {patterns.described(pattern)}")
        elif name == created:
            errors.append(f"{setting}: {name!r} is the one the stack creates (it is always used); "
                          "name only existing ones")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        errors.append(f"{setting}: {', '.join(repeated)} named more than once")
    return names


def _policy_document(value: str, errors: list[str]) -> str:
    name = "THINGPRESS_IOT_POLICY_DOCUMENT"
    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value)
        if not path.is_file():
            errors.append(f"{name}: {value} is neither inline JSON nor a readable file")
            return ""
        text = path.read_text()
    try:
        doc = json.loads(text)
    except ValueError as exc:
        errors.append(f"{name}: not valid JSON ({exc})")
        return ""
    if not isinstance(doc, dict) or not isinstance(doc.get("Statement"), list) or not doc["Statement"]:
        errors.append(f"{name}: must be an IoT policy document with a non-empty Statement list")
        return ""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))
