"""IoT as AWS answers it: certificate ids and ``CreateThing`` on an existing thing.

* **AWS-true certificate ids.** ``iot.use_valid_cert`` is switched on: the
  certificate id is the SHA-256 of the DER, as AWS IoT's ids are seen to be (no API
  page says so: thingpress uses the id AWS returns, ``thingpress.importer``). (moto 5.2's
  ``POST /moto-api/config`` ignores the ``iot`` section, so it is set in-process.)
* **CreateThing on an existing thing.** AWS returns the existing thing when the
  request matches it (same type and attributes) and answers
  ``ResourceAlreadyExistsException`` when it differs; moto silently replaces the
  thing (new id, new attributes). :func:`aws_create_thing` answers as AWS does,
  so a re-uploaded manifest finds its things as they are.

The other IoT rules have modules of their own: registry limits (:mod:`.iot_rules`),
deletions (:mod:`.iot_deletion`), detach propagation (:mod:`.iot_detach`), tags
(:mod:`.iot_tags`) and quotas (:mod:`.quota`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from thingpress_cli.local.emulator.guard import Patched

PATCHED = (
    Patched("moto.core.config", "default_user_config"),
    Patched("moto.iot.models", "IoTBackend.create_thing",
            ("self", "thing_name", "thing_type_name", "attribute_payload", "billing_group_name")),
)


def thing_by_name(backend: Any, thing_name: str) -> Any:
    """The thing named ``thing_name`` by its key (moto keys things by ARN), else None."""
    from moto.utilities.utils import get_partition

    region = backend.region_name
    thing = backend.things.get(f"arn:{get_partition(region)}:iot:{region}:{backend.account_id}:thing/{thing_name}")
    return thing if thing is not None and thing.thing_name == thing_name else None


def aws_create_thing(create_thing: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``IoTBackend.create_thing``, answering as AWS for a thing that exists.

    AWS returns the existing thing when the request matches it (same type and
    attributes) and raises ``ResourceAlreadyExistsException`` when it differs
    (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThing.html);
    moto replaces the thing. A thing that does not exist is created by moto.
    """
    from moto.iot.exceptions import ResourceAlreadyExistsException

    @functools.wraps(create_thing)
    def create(self: Any, thing_name: str, thing_type_name: str | None, attribute_payload: dict[str, Any] | None,
               billing_group_name: str | None = None) -> Any:
        existing = thing_by_name(self, thing_name)
        if existing is None:
            return create_thing(self, thing_name, thing_type_name, attribute_payload, billing_group_name)
        wanted_type = thing_type_name or None
        wanted_attributes = (attribute_payload or {}).get("attributes") or {}
        current_type = existing.thing_type.thing_type_name if existing.thing_type else None
        if wanted_type == current_type and wanted_attributes == existing.attributes:
            return existing
        raise ResourceAlreadyExistsException(f"Thing {thing_name} already exists with different tags",
                                             existing.thing_name, existing.arn)

    return create


def install() -> None:
    """AWS-true certificate ids and ``CreateThing`` on an existing thing."""
    from moto.core.config import default_user_config
    from moto.iot.models import IoTBackend

    default_user_config["iot"] = {"use_valid_cert": True}
    IoTBackend.create_thing = aws_create_thing(IoTBackend.create_thing)  # type: ignore[method-assign]
