"""Validation patterns, each defined once. Match with ``fullmatch`` (no anchors here).

Shared by the functions, the stack configuration (``stacks/config/``) and the CLI.
Each AWS name has the pattern and lengths of its own API reference page, even where
two pages give the same one: a thing type is not checked with the thing-name pattern.
:func:`described` renders one for a message, so no message retypes a pattern.
"""

from __future__ import annotations

import re

#: AWS IoT thing names: ``thingName``, 1-128 of ``[a-zA-Z0-9:_-]``
#: (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThing.html).
THING_NAME_MAX = 128
THING_NAME_CHAR = re.compile(r"[a-zA-Z0-9:_-]")
THING_NAME = re.compile(rf"{THING_NAME_CHAR.pattern}{{1,{THING_NAME_MAX}}}")
#: AWS IoT thing type names: ``thingTypeName``, 1-128 of ``[a-zA-Z0-9:_-]``
#: (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThingType.html).
THING_TYPE_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
#: AWS IoT thing group names: ``thingGroupName``, 1-128 of ``[a-zA-Z0-9:_-]``
#: (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThingGroup.html,
#: https://docs.aws.amazon.com/iot/latest/apireference/API_AddThingToThingGroup.html).
THING_GROUP_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
#: AWS IoT policy names: ``policyName``, 1-128 of ``[\w+=,.@-]``
#: (https://docs.aws.amazon.com/iot/latest/apireference/API_CreatePolicy.html,
#: https://docs.aws.amazon.com/iot/latest/apireference/API_AttachPolicy.html): ``.``, ``@``,
#: ``+``, ``=`` and ``,`` are allowed, ``:`` is not. AWS's ``\w`` is ASCII (Java's): letters, digits, ``_``.
POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
#: an AWS IoT certificate id: lowercase hex SHA-256 of the certificate's DER.
FINGERPRINT = re.compile(r"[0-9a-f]{64}")
#: ``thingpress.audit.keys.manifest_id``: vendor, '-', 20 hex digits of the object version's digest.
MANIFEST_ID = re.compile(r"[a-z]+-[0-9a-f]{20}")
#: ``thingpress.audit.keys.now_iso``: UTC to the second.
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")

_ONE_CLASS = re.compile(r"(\[[^\]]+\])\{(\d+),(\d+)\}")


def described(pattern: re.Pattern[str]) -> str:
    """``1-128 characters of [a-zA-Z0-9:_-]`` for a name pattern above (one character class, a length range)."""
    found = _ONE_CLASS.fullmatch(pattern.pattern)
    if found is None:
        raise ValueError(f"not a name pattern of one character class and a length: {pattern.pattern!r}")
    chars, low, high = found.groups()
    return f"{low}-{high} characters of {chars}"
