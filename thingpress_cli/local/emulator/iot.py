"""IoT as AWS answers it: certificate ids and ``CreateThing`` on an existing thing.

* **AWS-true certificate ids.** ``iot.use_valid_cert`` is switched on: the
  certificate id is the SHA-256 of the DER, as AWS IoT's ids are seen to be (no API
  page says so: thingpress uses the id AWS returns, ``thingpress.importer.calls``). (moto 5.2's
  ``POST /moto-api/config`` ignores the ``iot`` section, so it is set in-process.)
* **CreateThing on an existing thing.** AWS returns the existing thing when the
  request matches it (same type and attributes) and answers
  ``ResourceAlreadyExistsException`` when it differs; moto silently replaces the
  thing (new id, new attributes). :func:`aws_create_thing` answers as AWS does,
  so a re-uploaded manifest finds its things as they are.
* **UpdateCertificate on a REVOKED certificate.** The developer guide says "Once a
  certificate is revoked, it's status can't be changed. That is, the certificate
  status can't be changed to Active or any other status." ("Revoke a client
  certificate", https://docs.aws.amazon.com/iot/latest/developerguide/revoke-ca-cert.html);
  the API reference (https://docs.aws.amazon.com/iot/latest/apireference/API_UpdateCertificate.html)
  lists ``CertificateStateException`` (HTTP 406, "The certificate operation is not
  allowed") among its errors, and says that setting PENDING_TRANSFER or
  PENDING_ACTIVATION "will result in an exception being thrown". moto sets any
  status (``IoTBackend.update_certificate``: "TODO: validate new_status").
  :func:`aws_update_certificate` refuses a REVOKED certificate's change with
  ``CertificateStateException`` (REVOKED again changes nothing: the call is
  idempotent, the page says), and the two internal statuses, or one the page does
  not list, with ``InvalidRequestException`` (the page names no error for them).

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
    Patched("moto.iot.models", "IoTBackend.update_certificate", ("self", "certificate_id", "new_status")),
)

#: UpdateCertificate ``newStatus`` values a caller may set (the API reference's valid values less the two
#: it says throw, PENDING_TRANSFER and PENDING_ACTIVATION; REGISTER_INACTIVE is deprecated, still accepted).
SETTABLE_STATUSES = frozenset({"ACTIVE", "INACTIVE", "REVOKED", "REGISTER_INACTIVE"})


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


def aws_update_certificate(update_certificate: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``IoTBackend.update_certificate``, refusing what AWS refuses (module docstring)."""
    from moto.iot.exceptions import CertificateStateException, InvalidRequestException

    @functools.wraps(update_certificate)
    def update(self: Any, certificate_id: str, new_status: str) -> None:
        if new_status not in SETTABLE_STATUSES:
            raise InvalidRequestException(f"newStatus {new_status} cannot be set")
        current = self.describe_certificate(certificate_id).status
        if current == "REVOKED" and new_status != "REVOKED":
            raise CertificateStateException("Certificate is revoked; its status cannot be changed.", certificate_id)
        update_certificate(self, certificate_id, new_status)

    return update


def install() -> None:
    """AWS-true certificate ids, ``CreateThing`` on an existing thing, ``UpdateCertificate``'s refusals."""
    from moto.core.config import default_user_config
    from moto.iot.models import IoTBackend

    default_user_config["iot"] = {"use_valid_cert": True}
    IoTBackend.create_thing = aws_create_thing(IoTBackend.create_thing)  # type: ignore[method-assign]
    IoTBackend.update_certificate = aws_update_certificate(  # type: ignore[method-assign]
        IoTBackend.update_certificate)
