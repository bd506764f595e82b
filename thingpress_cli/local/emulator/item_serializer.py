"""DynamoDB items written into a response as they are: the same JSON at a fraction of moto's cost.

moto 5.2 answers every request through a generic serializer that walks the service model: for each
``AttributeValue`` (every attribute of every item a ``Query`` or ``GetItem`` returns) it looks up each
of the shape's ten members (``S``, ``N``, ``B``, ``SS``, ``NS``, ``BS``, ``M``, ``L``, ``NULL``,
``BOOL``) under several aliases, for the one that is set. Profiled on ``thingpress status`` over 311
manifests (a summary and 16 shards each), that was 60 % of the command's time: about 0.8 ms per item,
where DynamoDB's own answer costs nothing of the kind. moto's DynamoDB handler already holds each
attribute value in its wire form (``{"S": "..."}``, ``dynamo_to_dict``), so :func:`wire_value` copies
it as the generic walk would write it: strings and numbers as strings, booleans as they are, string and
number sets as lists of strings, maps and lists recursively. A value with anything else (a binary
``B``/``BS``, which the serializer base64-encodes; a member that is not a string or a boolean where
the model says so; a key the shape does not have) goes the generic way, unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from thingpress_cli.local.emulator.guard import Patched

PATCHED = (
    Patched("moto.core.serialize", "BaseJSONSerializer._serialize_type_structure",
            ("self", "serialized", "value", "shape", "key")),
)

#: the service models whose ``AttributeValue`` shape this applies to.
SERVICES = frozenset({"dynamodb"})
_STRINGS = frozenset({"S", "N"})
_STRING_SETS = frozenset({"SS", "NS"})
_BOOLEANS = frozenset({"NULL", "BOOL"})


class _Generic(Exception):
    """The value holds something the generic serializer must write (a binary, an odd type)."""


def wire_value(value: Any) -> dict[str, Any]:
    """The JSON of one ``AttributeValue`` given in wire form, as moto's serializer writes it."""
    if type(value) is not dict or len(value) != 1:
        raise _Generic
    ((kind, inner),) = value.items()
    if kind in _STRINGS:
        if type(inner) is not str:
            raise _Generic
        return {kind: inner}
    if kind in _BOOLEANS:
        if type(inner) is not bool:
            raise _Generic
        return {kind: inner}
    if kind in _STRING_SETS:
        if type(inner) is not list or any(type(each) is not str for each in inner):
            raise _Generic
        return {kind: list(inner)}
    if kind == "M":
        if type(inner) is not dict or any(type(name) is not str for name in inner):
            raise _Generic
        return {kind: {name: wire_value(each) for name, each in inner.items()}}
    if kind == "L":
        if type(inner) is not list:
            raise _Generic
        return {kind: [wire_value(each) for each in inner]}
    raise _Generic


def direct_attribute_values(serialize_structure: Callable[..., Any]) -> Callable[..., Any]:
    """``_serialize_type_structure`` writing a DynamoDB ``AttributeValue`` in wire form directly."""

    @functools.wraps(serialize_structure)
    def structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and self.operation_model.service_model.service_name in SERVICES:
            try:
                serialized[self.get_serialized_name(shape, key)] = wire_value(value)
                return
            except _Generic:
                pass
        serialize_structure(self, serialized, value, shape, key)

    return structure


def install() -> None:
    """DynamoDB attribute values serialized directly (see the module notes)."""
    from moto.core.serialize import BaseJSONSerializer

    BaseJSONSerializer._serialize_type_structure = direct_attribute_values(  # type: ignore[method-assign]
        BaseJSONSerializer._serialize_type_structure)
