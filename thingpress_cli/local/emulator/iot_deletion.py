"""AWS IoT's deletion rules, enforced by the emulator as AWS enforces them.

moto deletes an IoT thing type, thing or certificate in some states where AWS
refuses, so a local teardown passed that would fail on AWS (issue 11). Each rule
below is taken from the AWS IoT API reference page cited with it; the refusal
uses the exception type and HTTP status that page lists. :func:`install` puts
them on moto's ``IoTBackend`` in the emulator process.

* **DeleteThingType** (https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteThingType.html,
  and the developer guide's "Delete a thing type",
  https://docs.aws.amazon.com/iot/latest/developerguide/delete-thing-types.html):
  "You can delete thing types only after they have been deprecated", "wait for
  five minutes after you deprecate it", and "You cannot delete a thing type if it
  has things associated with it". Each refusal is ``InvalidRequestException``
  (400). The too-early refusal carries AWS's text ``Please wait for 5 minutes
  after deprecation and then retry``: the Terraform AWS provider's
  ``aws_iot_thing_type`` destroy deprecates, then retries ``DeleteThingType`` for
  6 minutes while the error contains exactly that text (any other error ends the
  destroy). The wait is :attr:`DeletionRules.deprecation_wait` (AWS: 300 s); the
  emulator reads it from ``THINGPRESS_EMULATOR_THING_TYPE_WAIT`` (seconds) or
  ``--thing-type-wait``, and ``/moto-api/thingpress/settings`` changes it at run
  time. ``thingpress local up`` starts the emulator with a few seconds, so a
  local destroy waits seconds, not minutes. ``DeprecateThingType`` records
  ``deprecationDate`` as ``DescribeThingType`` reports it on AWS; deprecating an
  already deprecated type keeps the first date.
* **DeletePolicy** (https://docs.aws.amazon.com/iot/latest/apireference/API_DeletePolicy.html):
  "A policy cannot be deleted if it has non-default versions or it is attached
  to any certificate": ``DeleteConflictException`` (409), for any target
  (certificate, thing group, Cognito identity).
* **DeleteCertificate** (https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteCertificate.html):
  "A certificate cannot be deleted if it has a policy or IoT thing attached to it
  or if its status is set to ACTIVE": ``CertificateStateException`` (406) while
  ACTIVE, ``DeleteConflictException`` (409) while a thing or a policy is
  attached. ``forceDelete`` "Forces the deletion of a certificate if it is
  inactive and is not attached to an IoT thing": it overrides attached policies
  only (never ACTIVE, never an attached thing), and the forced delete takes the
  certificate's policy attachments with it (moto left them, so the policy could
  never be deleted afterwards).
* **DeleteThing** (https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteThing.html):
  refused with ``InvalidRequestException`` (400, the status the page lists; moto
  answered 409) while principals are attached, with AWS's text ``Cannot delete.
  Thing <name> is still attached to one or more principals``; and "Returns
  successfully with no error if ... you specify a thing that doesn't exist" (moto
  answered 404, so a retried teardown failed). A deleted thing leaves its thing
  groups.
* **DeleteThingGroup** (https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteThingGroup.html):
  moto already refuses a group with child groups and accepts a missing one; a
  deleted group now takes its policy attachments with it, as a deleted
  certificate does, so ``DeletePolicy`` is not refused by a target that is gone.

A detached principal still counts as attached for a few seconds (DeleteCertificate and
DeleteThing refuse as above): that rule is :mod:`.iot_detach`'s, and its one setting,
``detach_propagation`` (seconds), is shown and changed with the deprecation wait.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from thingpress_cli.local.emulator.guard import Patched
from thingpress_cli.local.emulator.iot_detach import CERTIFICATE_ATTACHED, PROPAGATION, THING_ATTACHED, DetachPropagation

#: Where the emulator reads the thing-type deprecation wait (seconds).
THING_TYPE_WAIT_SETTING = "THINGPRESS_EMULATOR_THING_TYPE_WAIT"
#: AWS's wait between DeprecateThingType and an accepted DeleteThingType.
AWS_THING_TYPE_WAIT = 300.0
#: The text of AWS's refusal the Terraform AWS provider retries on.
WAIT_AFTER_DEPRECATION = "Please wait for 5 minutes after deprecation and then retry"


class DeletionRules:
    """The emulator's settings for the rules above: the deprecation wait, and the detach
    propagation (:mod:`.iot_detach`; ``propagation``: the process's unless given)."""

    def __init__(self, deprecation_wait: float = AWS_THING_TYPE_WAIT,
                 propagation: DetachPropagation | None = None) -> None:
        self._lock = threading.Lock()
        self._wait = AWS_THING_TYPE_WAIT
        self.propagation = PROPAGATION if propagation is None else propagation
        self.configure({"thing_type_deprecation_wait": deprecation_wait})

    @property
    def deprecation_wait(self) -> float:
        with self._lock:
            return self._wait

    def configure(self, settings: dict[str, Any]) -> None:
        """Apply ``{"thing_type_deprecation_wait": seconds, "detach_propagation": seconds}`` (either or
        both); anything else is refused, and nothing is applied unless every value is valid."""
        unknown = set(settings) - {"thing_type_deprecation_wait", "detach_propagation"}
        if unknown:
            raise ValueError(f"unknown emulator settings: {', '.join(sorted(unknown))}")
        wait = float(settings.get("thing_type_deprecation_wait", self.deprecation_wait))
        if not 0 <= wait <= 3600:
            raise ValueError(f"thing_type_deprecation_wait must be 0..3600 seconds, not {wait}")
        if "detach_propagation" in settings:
            self.propagation.configure(settings["detach_propagation"])
        with self._lock:
            self._wait = wait

    def as_dict(self) -> dict[str, float]:
        return {"thing_type_deprecation_wait": self.deprecation_wait, "detach_propagation": self.propagation.seconds}

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> DeletionRules:
        value = (os.environ if environ is None else environ).get(THING_TYPE_WAIT_SETTING)
        return cls(float(value)) if value not in (None, "") else cls()


#: What :func:`install` replaces, with moto's parameters (:data:`.patches.PATCHED` includes them).
PATCHED = (
    Patched("moto.iot.models", "IoTBackend.deprecate_thing_type", ("self", "thing_type_name", "undo_deprecate")),
    Patched("moto.iot.models", "IoTBackend.delete_thing_type", ("self", "thing_type_name")),
    Patched("moto.iot.models", "IoTBackend.delete_policy", ("self", "policy_name")),
    Patched("moto.iot.models", "IoTBackend.delete_certificate", ("self", "certificate_id", "force_delete")),
    Patched("moto.iot.models", "IoTBackend.delete_thing", ("self", "thing_name")),
    Patched("moto.iot.models", "IoTBackend.delete_thing_group", ("self", "thing_group_name")),
)


def _thing_type(backend: Any, name: str) -> Any:
    from moto.iot.exceptions import ResourceNotFoundException

    found = next((t for t in backend.thing_types.values() if t.thing_type_name == name), None)
    if found is None:
        raise ResourceNotFoundException(f"Thing type {name} does not exist")
    return found


def _drop_policy_attachments(backend: Any, target_arn: str) -> None:
    for key in [k for k in backend.principal_policies if k[0] == target_arn]:
        del backend.principal_policies[key]


def install(rules: DeletionRules) -> None:
    """Put the deletion rules on moto's ``IoTBackend`` (see the module notes for each)."""
    from moto.iot.exceptions import (
        CertificateStateException, DeleteConflictException, InvalidRequestException, ResourceNotFoundException)
    from moto.iot.models import IoTBackend

    def deprecate_thing_type(self: Any, thing_type_name: str, undo_deprecate: bool) -> Any:
        thing_type = _thing_type(self, thing_type_name)
        if undo_deprecate:
            thing_type.metadata["deprecated"] = False
            thing_type.metadata.pop("deprecationDate", None)
        elif not thing_type.metadata.get("deprecated"):
            thing_type.metadata["deprecated"] = True
            thing_type.metadata["deprecationDate"] = time.time()
        return thing_type

    def delete_thing_type(self: Any, thing_type_name: str) -> None:
        thing_type = _thing_type(self, thing_type_name)
        if not thing_type.metadata.get("deprecated"):
            raise InvalidRequestException(
                f"Thing type {thing_type_name} is not deprecated; deprecate it before deleting it")
        deprecated_for = time.time() - float(thing_type.metadata.get("deprecationDate") or 0)
        if deprecated_for < rules.deprecation_wait:
            raise InvalidRequestException(
                f"Thing type {thing_type_name} was deprecated {deprecated_for:.0f} seconds ago. {WAIT_AFTER_DEPRECATION}")
        users = sum(1 for thing in self.things.values() if thing.thing_type is thing_type)
        if users:
            raise InvalidRequestException(
                f"Can not delete thing type {thing_type_name}: {users} things are still associated with it")
        del self.thing_types[thing_type.arn]

    def delete_policy(self: Any, policy_name: str) -> None:
        targets = [k[0] for k in self.principal_policies if k[1] == policy_name]
        if targets:
            raise DeleteConflictException(
                f"The policy cannot be deleted as the policy is attached to one or more principals (name={policy_name})")
        policy = self.get_policy(policy_name)
        if len(policy.versions) > 1:
            raise DeleteConflictException(
                f"The policy cannot be deleted as versions other than the default version exist (name={policy_name})")
        del self.policies[policy.name]

    def delete_certificate(self: Any, certificate_id: str, force_delete: bool) -> None:
        cert = self.describe_certificate(certificate_id)
        if cert.status == "ACTIVE":
            raise CertificateStateException(
                "Certificate must be deactivated (not ACTIVE) before deletion.", cert.certificate_id)
        if any(k[0] == cert.arn for k in self.principal_things):
            raise DeleteConflictException(CERTIFICATE_ATTACHED.format(arn=cert.arn))
        if not force_delete and any(k[0] == cert.arn for k in self.principal_policies):
            raise DeleteConflictException(f"Certificate policies must be detached before deletion (arn: {cert.arn})")
        _drop_policy_attachments(self, cert.arn)
        del self.certificates[cert.certificate_id]

    def delete_thing(self: Any, thing_name: str) -> None:
        try:
            thing = self.describe_thing(thing_name)
        except ResourceNotFoundException:
            return
        if any(k[1] == thing_name for k in self.principal_things):
            raise InvalidRequestException(THING_ATTACHED.format(name=thing_name))
        for group in self.thing_groups.values():
            group.things.pop(thing.arn, None)
        for billing_group in self.billing_groups.values():
            if thing.arn in billing_group.things:
                billing_group.things.remove(thing.arn)
        del self.things[thing.arn]

    moto_delete_thing_group = IoTBackend.delete_thing_group

    def delete_thing_group(self: Any, thing_group_name: str) -> None:
        arns = [arn for arn, group in self.thing_groups.items() if group.thing_group_name == thing_group_name]
        moto_delete_thing_group(self, thing_group_name)
        for arn in arns:
            if arn not in self.thing_groups:
                _drop_policy_attachments(self, arn)

    IoTBackend.deprecate_thing_type = deprecate_thing_type  # type: ignore[method-assign]
    IoTBackend.delete_thing_type = delete_thing_type  # type: ignore[method-assign]
    IoTBackend.delete_policy = delete_policy  # type: ignore[method-assign]
    IoTBackend.delete_certificate = delete_certificate  # type: ignore[method-assign]
    IoTBackend.delete_thing = delete_thing  # type: ignore[method-assign]
    IoTBackend.delete_thing_group = delete_thing_group  # type: ignore[method-assign]
