"""Thing attributes: what a manifest says about a device, within AWS IoT's limits.

AWS IoT (https://docs.aws.amazon.com/iot/latest/apireference/API_ThingAttribute.html,
https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThing.html and the
thing-type page of the developer guide): attribute names match
``[a-zA-Z0-9_.,@/:#-]+`` (at most 128 characters), values ``[a-zA-Z0-9_.,@/:#-]*``
(at most 800; the ``=[]`` the ThingAttribute shape also allows are not accepted by
the thing index, so they are not used); a thing **without** a thing type holds at
most 3 attributes, one **with** a type at most 50.

Every imported thing carries three attributes of its own (``thingpress_manifest``,
``thingpress_vendor``, ``thingpress_queued``; see ``thingpress.importer.rules``). The
device facts below are added only when a thing type is configured (the limit of 3
is already used otherwise). Per vendor, from the parser's ``details``:

===========  ====================  =======================
vendor       manifest field        thing attribute
===========  ====================  =======================
microchip    ``uniqueId``          ``device_id``
microchip    ``partNumber``        ``part_number``
infineon     chip id (file name)   ``device_id``
espressif    ``cn``                ``common_name``
generated    (none)
===========  ====================  =======================

A value that does not fit the pattern or the length is left out (never altered:
an attribute either says exactly what the manifest says or is absent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_.,@/:#-]{1,128}$")
VALUE_PATTERN = re.compile(r"^[a-zA-Z0-9_.,@/:#-]{0,800}$")
MAX_WITHOUT_TYPE = 3
MAX_WITH_TYPE = 50
#: the attributes thingpress sets on every thing it creates start with this (``thingpress.importer.rules``):
#: no operator's attribute may (``thingpress activate --attributes``).
OWN_PREFIX = "thingpress_"

#: vendor -> (details key, attribute name)
DEVICE_ATTRIBUTES: dict[str, tuple[tuple[str, str], ...]] = {
    "microchip": (("uniqueId", "device_id"), ("partNumber", "part_number")),
    "infineon": (("chip_id", "device_id"),),
    "espressif": (("cn", "common_name"),),
    "generated": (),
}


def problem(name: object, value: object) -> str | None:
    """Why ``name: value`` cannot be a thing attribute, or None."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return f"attribute name {name!r} must be 1-128 of letters, digits or _.,@/:#-"
    if not isinstance(value, str) or not VALUE_PATTERN.match(value):
        return f"attribute {name} value must be at most 800 of letters, digits or _.,@/:#-"
    return None


def settable_problem(name: object, value: object) -> str | None:
    """Why an operator may not set ``name: value`` on a thing (IoT's rules, and no ``OWN_PREFIX`` name), or None."""
    if isinstance(name, str) and name.startswith(OWN_PREFIX):
        return f"attribute {name} is thingpress's own ({OWN_PREFIX}*): it is not set from a list"
    return problem(name, value)


def attribute_limit(typed: bool) -> int:
    """How many attributes a thing holds, with or without a thing type (module docstring)."""
    return MAX_WITH_TYPE if typed else MAX_WITHOUT_TYPE


def device_attributes(vendor: str, details: Mapping[str, str]) -> dict[str, str]:
    """The thing attributes a manifest entry's ``details`` give, per :data:`DEVICE_ATTRIBUTES`."""
    out: dict[str, str] = {}
    for key, name in DEVICE_ATTRIBUTES.get(vendor, ()):
        value = details.get(key)
        if value and problem(name, value) is None:
            out[name] = value
    return out
