"""DetachThingPrincipal's propagation, modelled: for a while after the call the principal still counts as attached.

The AWS IoT API reference for DetachThingPrincipal
(https://docs.aws.amazon.com/iot/latest/apireference/API_DetachThingPrincipal.html) says:
"This call is asynchronous. It might take several seconds for the detachment to propagate."
moto applies the detach at once, so code that deletes right after detaching (rollback,
teardown) passed every local test and could fail on AWS part-way. The model: a detach
that succeeded leaves the pair (principal, thing) *propagating* for :attr:`DetachPropagation.seconds`;
meanwhile the two deletions AWS refuses while a principal is attached refuse as they do for an
attached one, with the exception type, HTTP status and text AWS answers (the API reference pages
https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteCertificate.html and
https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteThing.html list the types):

* **DeleteCertificate** of the pair's certificate: ``DeleteConflictException`` (409),
  :data:`CERTIFICATE_ATTACHED` ("A certificate cannot be deleted if it has a policy or IoT
  thing attached to it");
* **DeleteThing** of the pair's thing: ``InvalidRequestException`` (400),
  :data:`THING_ATTACHED` (AWS's text for a thing with principals attached).

Not modelled: the list APIs (``ListThingPrincipals``, ``ListPrincipalThings``) show the detach
at once. AWS's own SDK CI polls ``ListThingPrincipals`` after a detach before deleting, which
suggests they lag too, but the page does not say so, and a lagging list would change what every
reader of the registry sees locally. The setting applies to the pairs already propagating: set
to 0, every detach is done at once.

The setting is seconds (:data:`MAX_SECONDS` at most). Off in a process (0): the unit tests'
in-process moto answers as before unless a test turns it on (the ``detach_propagation`` fixture,
tests/conftest.py, on a manual clock). The emulator starts with :data:`EMULATOR_SECONDS` (a few
seconds, as AWS) unless :data:`SETTING` or ``--detach-propagation`` says otherwise, and
``/moto-api/thingpress/settings`` changes it at run time (key ``detach_propagation``, through
:class:`.iot_deletion.DeletionRules`). :func:`install` is one of the behaviour patches
(:func:`.patches.apply`), so the emulator and in-process moto get the same rule;
it wraps moto's IoT *responses* (not the backend, whose deletions :mod:`.iot_deletion` replaces),
so the check comes first whichever backend rules are installed.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from thingpress_cli.local.emulator.guard import Patched
from thingpress_cli.local.emulator.rule_state import RuleState

#: Where the emulator reads the propagation time (seconds).
SETTING = "THINGPRESS_EMULATOR_DETACH_PROPAGATION"
#: The emulator's propagation when the setting is unset: AWS's "several seconds".
EMULATOR_SECONDS = 3.0
#: The longest propagation accepted.
MAX_SECONDS = 300.0
#: AWS's refusal of DeleteCertificate while a thing is attached (moto's text, as :mod:`.iot_deletion`'s).
CERTIFICATE_ATTACHED = "Things must be detached before deletion (arn: {arn})"
#: AWS's refusal of DeleteThing while a principal is attached.
THING_ATTACHED = "Cannot delete. Thing {name} is still attached to one or more principals"


class DetachPropagation(RuleState):
    """The propagation time and the detaches still propagating: (principal ARN, thing ARN) -> when."""

    def _clear(self) -> None:
        """Off, nothing propagating."""
        self._seconds = 0.0
        self._detached: dict[tuple[str, str], float] = {}

    @property
    def seconds(self) -> float:
        with self._lock:
            return self._seconds

    def configure(self, seconds: float) -> None:
        """Set the propagation time (0: off); it applies to the detaches propagating now too."""
        value = float(seconds)
        if not 0 <= value <= MAX_SECONDS:
            raise ValueError(f"detach_propagation must be 0..{MAX_SECONDS:g} seconds, not {seconds}")
        with self._lock:
            self._seconds = value

    def detached(self, principal_arn: str, thing_arn: str) -> None:
        """A DetachThingPrincipal of the pair succeeded now (nothing is kept while off)."""
        with self._lock:
            now = self.clock()
            self._detached = {pair: at for pair, at in self._detached.items() if now - at < self._seconds}
            if self._seconds:
                self._detached[(principal_arn, thing_arn)] = now

    def propagating(self, *, principal_arn: str | None = None, thing_arn: str | None = None) -> list[tuple[str, str]]:
        """The pairs with that principal (or thing) whose detach has not propagated yet."""
        with self._lock:
            now = self.clock()
            return [pair for pair, at in self._detached.items() if now - at < self._seconds
                    and principal_arn in (None, pair[0]) and thing_arn in (None, pair[1])]


def from_environment(environ: dict[str, str] | None = None) -> float:
    """The emulator's propagation at start: :data:`SETTING` (seconds), else :data:`EMULATOR_SECONDS`."""
    value = (os.environ if environ is None else environ).get(SETTING)
    return float(value) if value not in (None, "") else EMULATOR_SECONDS


#: What :func:`install` wraps, with moto's parameters (:data:`.patches.PATCHED` includes them).
PATCHED = (
    Patched("moto.iot.responses", "IoTResponse.detach_thing_principal", ("self",)),
    Patched("moto.iot.responses", "IoTResponse.delete_certificate", ("self",)),
    Patched("moto.iot.responses", "IoTResponse.delete_thing", ("self",)),
)

#: The process's detaches: moto's IoT responses consult it (:func:`install`).
PROPAGATION = DetachPropagation()


def install(propagation: DetachPropagation = PROPAGATION) -> None:
    """Wrap moto's DetachThingPrincipal, DeleteCertificate and DeleteThing responses (see the module notes)."""
    from moto.iot.exceptions import DeleteConflictException, InvalidRequestException, ResourceNotFoundException
    from moto.iot.responses import IoTResponse

    moto_detach = IoTResponse.detach_thing_principal
    moto_delete_certificate = IoTResponse.delete_certificate
    moto_delete_thing = IoTResponse.delete_thing

    @functools.wraps(moto_detach)
    def detach_thing_principal(self: Any) -> Any:
        answer = moto_detach(self)  # raises if the pair is not attached: nothing to propagate
        thing = self.iot_backend.describe_thing(self._get_param("thingName"))
        propagation.detached(self.headers.get("x-amzn-principal"), thing.arn)
        return answer

    @functools.wraps(moto_delete_certificate)
    def delete_certificate(self: Any) -> Any:
        cert = self.iot_backend.describe_certificate(self._get_param("certificateId"))
        if propagation.propagating(principal_arn=cert.arn):
            raise DeleteConflictException(CERTIFICATE_ATTACHED.format(arn=cert.arn))
        return moto_delete_certificate(self)

    @functools.wraps(moto_delete_thing)
    def delete_thing(self: Any) -> Any:
        name = self._get_param("thingName")
        try:
            thing = self.iot_backend.describe_thing(name)
        except ResourceNotFoundException:
            return moto_delete_thing(self)  # what a missing thing gets is the backend's rule
        if propagation.propagating(thing_arn=thing.arn):
            raise InvalidRequestException(THING_ATTACHED.format(name=name))
        return moto_delete_thing(self)

    IoTResponse.detach_thing_principal = detach_thing_principal  # type: ignore[method-assign]
    IoTResponse.delete_certificate = delete_certificate  # type: ignore[method-assign]
    IoTResponse.delete_thing = delete_thing  # type: ignore[method-assign]
