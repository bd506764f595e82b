"""AWS IoT registry rules moto does not check, enforced as AWS enforces them (issue 22).

moto stores whatever a ``CreateThing``, ``UpdateThing`` or ``AddThingToThingGroup``
asks for, so a local run passed where AWS refuses: a teardown left 5 attributes on
a thing without a type, an importer joined a thing to 11 groups. :func:`install`
puts the rules below on moto's ``IoTBackend``; :func:`.patches.apply`
calls it, so the emulator *and* the unit tests' in-process ``mock_aws`` refuse alike.
Each refusal is ``InvalidRequestException`` (HTTP 400), the error the pages list for
the request (the text of each message is the emulator's own: the pages give none).

The limits are defined here, from the pages, and not imported from ``thingpress``:
the emulator must not agree with a wrong product constant.

* **Thing attributes** (developer guide, "Thing types",
  https://docs.aws.amazon.com/iot/latest/developerguide/thing-types.html: "Things
  with a thing type can have up to 50 attributes. Things without a thing type can
  have up to three attributes."; ``CreateThing``'s ``attributePayload`` "consists of
  up to three name/value pairs",
  https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThing.html). moto
  (``IoTBackend.create_thing`` / ``update_thing`` in moto/iot/models.py) counts
  nothing. ``CreateThing`` is refused when it asks for more than the thing's type
  allows. ``UpdateThing``
  (https://docs.aws.amazon.com/iot/latest/apireference/API_UpdateThing.html) is
  checked on the thing it would leave: the type it keeps, gets
  (``thingTypeName``) or loses (``removeThingType``), and the attributes after the
  payload (``merge`` adds to the stored ones, else replaces them; an empty value
  removes an attribute: "To remove an attribute, call UpdateThing with an empty
  attribute value",
  https://docs.aws.amazon.com/iot/latest/apireference/API_AttributePayload.html).
  So ``removeThingType`` on a thing with 5 attributes is refused, and the thing
  keeps its type: ``DeleteThingType`` stays refused
  (https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteThingType.html).
  The pages do not say which state AWS checks when one ``UpdateThing`` both
  removes the type and removes attributes; here it is the state left, and
  thingpress's teardown does not depend on it (two calls, each leaving a valid thing).
* **Thing groups of a thing** (developer guide, "Static thing groups" and its
  limits, https://docs.aws.amazon.com/iot/latest/developerguide/thing-groups.html:
  "You can add a thing to a maximum of 10 groups. But you can't add a thing to more
  than one group in the same hierarchy. (In other words, you can't add a thing to
  two groups which share a common parent.)"; "Dynamic thing groups",
  https://docs.aws.amazon.com/iot/latest/developerguide/dynamic-thing-groups.html:
  "Thing membership is not explicitly defined", it is the query's). moto's
  ``IoTBackend.add_thing_to_thing_group`` adds any thing to any group.
  ``AddThingToThingGroup``
  (https://docs.aws.amazon.com/iot/latest/apireference/API_AddThingToThingGroup.html,
  and ``UpdateThingGroupsForThing``, which moto runs through it) is refused for a
  dynamic group, for a group whose hierarchy (its root group) already holds the
  thing, and when the thing is in 10 groups; adding a thing to a group it is in
  changes nothing and is not refused (as moto and AWS answer it).
  ``overrideDynamicGroups`` is not modelled: a dynamic group here has no members.
* **Dynamic thing groups.** moto has no ``CreateDynamicThingGroup`` (nor
  ``DeleteDynamicThingGroup``): they are added
  (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateDynamicThingGroup.html),
  enough for a configuration to name one. The group is stored as moto stores a
  thing group, marked dynamic, with its query (``DescribeThingGroup`` shows
  ``queryString``, ``indexName``, ``queryVersion`` and status ``ACTIVE``); its
  query is not evaluated (no fleet index), so it has no members. A dynamic group
  "can't be part of a hierarchy": it has no parent, and none can be created under it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from thingpress_cli.local.emulator.guard import Patched

#: AWS IoT: attributes of a thing without / with a thing type (developer guide, "Thing types").
UNTYPED_ATTRIBUTES = 3
TYPED_ATTRIBUTES = 50
#: AWS IoT: thing groups a thing can be in (developer guide, "Static thing groups").
GROUPS_PER_THING = 10
#: The default fleet index of a dynamic group (``CreateDynamicThingGroup`` ``indexName``).
DEFAULT_INDEX = "AWS_Things"

#: Every moto attribute :func:`install` replaces or wraps, with moto's parameters
#: (:data:`.patches.PATCHED` includes them, so :func:`.guard.check` checks each one).
PATCHED = (
    Patched("moto.iot.models", "IoTBackend.create_thing",
            ("self", "thing_name", "thing_type_name", "attribute_payload", "billing_group_name")),
    Patched("moto.iot.models", "IoTBackend.update_thing",
            ("self", "thing_name", "thing_type_name", "attribute_payload", "remove_thing_type")),
    Patched("moto.iot.models", "IoTBackend.add_thing_to_thing_group",
            ("self", "thing_group_name", "thing_group_arn", "thing_name", "thing_arn")),
    Patched("moto.iot.models", "IoTBackend.create_thing_group",
            ("self", "thing_group_name", "parent_group_name", "thing_group_properties")),
    Patched("moto.iot.models", "FakeThingGroup.to_dict", ("self",)),
    Patched("moto.iot.responses", "IoTResponse"),
)


def _refused(message: str) -> Exception:
    from moto.iot.exceptions import InvalidRequestException

    return InvalidRequestException(message)


def attribute_limit(typed: bool) -> int:
    return TYPED_ATTRIBUTES if typed else UNTYPED_ATTRIBUTES


def _check_attributes(thing_name: str, typed: bool, attributes: dict[str, Any]) -> None:
    limit = attribute_limit(typed)
    if len(attributes) > limit:
        kind = "with a thing type" if typed else "without a thing type"
        raise _refused(f"Thing {thing_name} would have {len(attributes)} attributes; a thing {kind} can have at "
                       f"most {limit}")


def attributes_after_update(current: dict[str, Any], attribute_payload: dict[str, Any] | None) -> dict[str, Any]:
    """The attributes an ``UpdateThing`` leaves (``merge``: added to the current ones; an empty value removes)."""
    if attribute_payload is None or "attributes" not in attribute_payload:
        return dict(current)
    given = attribute_payload.get("attributes") or {}
    merged = {**current, **given} if attribute_payload.get("merge") else dict(given)
    return {name: value for name, value in merged.items() if value}


def _root(group: Any) -> str:
    """The name of the root group of ``group``'s hierarchy (itself when it has no parent)."""
    ancestors = group.metadata.get("rootToParentThingGroups") or []
    return str(ancestors[0]["groupName"]) if ancestors else str(group.thing_group_name)


def _groups_of(backend: Any, thing: Any) -> list[Any]:
    return [group for group in backend.thing_groups.values() if thing.arn in group.things]


def _check_group_membership(backend: Any, group: Any, thing: Any) -> None:
    name = group.thing_group_name
    if getattr(group, "dynamic_query", None) is not None:
        raise _refused(f"Cannot add thing {thing.thing_name} to dynamic thing group {name}: the things in a dynamic "
                       "thing group are those its query matches")
    current = _groups_of(backend, thing)
    root = _root(group)
    same = [other.thing_group_name for other in current if _root(other) == root]
    if same:
        raise _refused(f"Cannot add thing {thing.thing_name} to thing group {name}: it is in thing group "
                       f"{same[0]} of the same hierarchy (root {root})")
    if len(current) >= GROUPS_PER_THING:
        raise _refused(f"Cannot add thing {thing.thing_name} to thing group {name}: it is in "
                       f"{len(current)} thing groups, the most a thing can be in is {GROUPS_PER_THING}")


def _limited_create_thing(create_thing: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create_thing)
    def create(self: Any, thing_name: str, thing_type_name: str | None, attribute_payload: dict[str, Any] | None,
               billing_group_name: str | None = None) -> Any:
        _check_attributes(thing_name, bool(thing_type_name), (attribute_payload or {}).get("attributes") or {})
        return create_thing(self, thing_name, thing_type_name, attribute_payload, billing_group_name)

    return create


def _limited_update_thing(update_thing: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(update_thing)
    def update(self: Any, thing_name: str, thing_type_name: str | None, attribute_payload: dict[str, Any] | None,
               remove_thing_type: bool) -> None:
        thing = self.describe_thing(thing_name)
        typed = bool(thing_type_name) or (thing.thing_type is not None and not remove_thing_type)
        if not (remove_thing_type and thing_type_name):  # moto refuses both at once itself
            _check_attributes(thing_name, typed, attributes_after_update(thing.attributes, attribute_payload))
        return update_thing(self, thing_name, thing_type_name, attribute_payload, remove_thing_type)

    return update


def _limited_add_thing_to_thing_group(add: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(add)
    def add_thing(self: Any, thing_group_name: str | None, thing_group_arn: str | None, thing_name: str | None,
                  thing_arn: str | None) -> None:
        group = self._identify_thing_group(thing_group_name, thing_group_arn)
        thing = self._identify_thing(thing_name, thing_arn)
        if thing.arn not in group.things:
            _check_group_membership(self, group, thing)
        return add(self, thing_group_name, thing_group_arn, thing_name, thing_arn)

    return add_thing


def _static_parent_create_thing_group(create_thing_group: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create_thing_group)
    def create(self: Any, thing_group_name: str, parent_group_name: str | None,
               thing_group_properties: dict[str, Any] | None) -> Any:
        if parent_group_name:
            parent = self.describe_thing_group(parent_group_name)
            if getattr(parent, "dynamic_query", None) is not None:
                raise _refused(f"Cannot create thing group {thing_group_name} under dynamic thing group "
                               f"{parent_group_name}: dynamic thing groups can't be part of a hierarchy")
        return create_thing_group(self, thing_group_name, parent_group_name, thing_group_properties)

    return create


def _dynamic_to_dict(to_dict: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(to_dict)
    def described(self: Any) -> dict[str, Any]:
        answer = to_dict(self)
        query = getattr(self, "dynamic_query", None)
        if query is not None:
            answer.update(query, status="ACTIVE")
        return answer

    return described


def create_dynamic_thing_group(backend: Any, thing_group_name: str, query_string: str, index_name: str | None,
                               query_version: str | None, thing_group_properties: dict[str, Any] | None) -> Any:
    """A thing group marked dynamic, with its query (not evaluated: no members)."""
    from moto.iot.exceptions import ResourceAlreadyExistsException, ResourceNotFoundException

    try:
        existing = backend.describe_thing_group(thing_group_name)
    except ResourceNotFoundException:
        existing = None
    if existing is not None:
        raise ResourceAlreadyExistsException(f"Thing Group {thing_group_name} already exists", existing.thing_group_id,
                                             existing.arn)
    if not query_string:
        raise _refused("queryString is required for a dynamic thing group")
    backend.create_thing_group(thing_group_name, None, thing_group_properties)
    group = backend.describe_thing_group(thing_group_name)
    group.dynamic_query = {"queryString": query_string, "indexName": index_name or DEFAULT_INDEX,
                           "queryVersion": query_version or "2017-09-30"}
    return group


def delete_dynamic_thing_group(backend: Any, thing_group_name: str) -> None:
    """``DeleteDynamicThingGroup``: a missing group is no error (as ``DeleteThingGroup``)."""
    from moto.iot.exceptions import ResourceNotFoundException

    try:
        group = backend.describe_thing_group(thing_group_name)
    except ResourceNotFoundException:
        return
    if getattr(group, "dynamic_query", None) is None:
        raise _refused(f"Thing group {thing_group_name} is not a dynamic thing group")
    backend.delete_thing_group(thing_group_name)


def install() -> None:
    """Put the rules above on moto's IoT (``IoTBackend`` and ``IoTResponse``)."""
    from moto.core.responses import ActionResult, EmptyResult
    from moto.iot.models import FakeThingGroup, IoTBackend
    from moto.iot.responses import IoTResponse

    def create_dynamic(self: Any) -> Any:
        name = unquote(self.path.split("/dynamic-thing-groups/")[-1])
        group = create_dynamic_thing_group(self.iot_backend, name, self._get_param("queryString"),
                                           self._get_param("indexName"), self._get_param("queryVersion"),
                                           self._get_param("thingGroupProperties"))
        return ActionResult({"thingGroupName": group.thing_group_name, "thingGroupArn": group.arn,
                             "thingGroupId": group.thing_group_id, **group.dynamic_query})

    def delete_dynamic(self: Any) -> Any:
        delete_dynamic_thing_group(self.iot_backend, unquote(self.path.split("/dynamic-thing-groups/")[-1]))
        return EmptyResult()

    IoTBackend.create_thing = _limited_create_thing(IoTBackend.create_thing)  # type: ignore[method-assign]
    IoTBackend.update_thing = _limited_update_thing(IoTBackend.update_thing)  # type: ignore[method-assign]
    IoTBackend.add_thing_to_thing_group = _limited_add_thing_to_thing_group(  # type: ignore[method-assign]
        IoTBackend.add_thing_to_thing_group)
    IoTBackend.create_thing_group = _static_parent_create_thing_group(  # type: ignore[method-assign]
        IoTBackend.create_thing_group)
    FakeThingGroup.to_dict = _dynamic_to_dict(FakeThingGroup.to_dict)  # type: ignore[method-assign]
    IoTResponse.create_dynamic_thing_group = create_dynamic  # type: ignore[attr-defined]
    IoTResponse.delete_dynamic_thing_group = delete_dynamic  # type: ignore[attr-defined]
    from moto.core import responses

    clear = getattr(responses.method_names_from_class, "cache_clear", None)  # speed_up_moto's cache, if any
    if clear is not None:
        clear()
