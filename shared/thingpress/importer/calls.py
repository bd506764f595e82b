"""The IoT calls that import one certificate, in order, and what their errors mean.

IoT calls, in order (five for a new certificate with one policy and one group)
-----------------------------------------------------------------------------
1. ``RegisterCertificateWithoutCA`` (status ACTIVE, or INACTIVE with the
   ``certificate_status`` setting: devices can be enabled later, e.g. at activation).
   The certificate's id and ARN are what AWS returns: ``certificateId`` and
   ``certificateArn`` (https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterCertificateWithoutCA.html),
   or, when the certificate is registered already, the ``resourceId`` and
   ``resourceArn`` of the ``ResourceAlreadyExistsException`` (its error shape; botocore
   puts them at the top of the error response). No API page says the id is the SHA-256
   of the DER: only when that answer carries neither is the id taken to be the
   message's fingerprint (the SHA-256 of the DER, checked against the PEM before any
   call: ``rules.check_certificate``) and the ARN derived as
   ``arn:<partition>:iot:<region>:<account>:cert/<id>`` (``rules.CertificateArns``);
   there is no ``DescribeCertificate``. An existing certificate's status is left
   alone (an operator may have deactivated it on purpose). The id goes into the
   outcome row (``certificate_id``), for rollback and reconcile.
2. ``CreateThing`` with the configured thing type and the attributes that mark
   the thing as imported and say who owns it (``rules.thing_attributes``: which
   ones, and IoT's limits on them). Every value comes from the message and the
   function's settings, so a redelivery sends the identical request and AWS answers
   it as a success.
   ``ResourceAlreadyExistsException`` means the thing exists with other attributes
   or another type: the ``existing_thing`` setting decides (``results``, "Outcome rule").
3. ``AttachThingPrincipal``; 4. ``AttachPolicy`` per configured policy;
5. ``AddThingToThingGroup`` per configured group. All three are idempotent.

A certificate that is already registered costs the same five calls (the two
failed creations included): the attachments are repeated on purpose, because an
earlier attempt may have stopped half-way, and they are idempotent.

Every call goes through the importer's ``Throttle`` (token bucket per API, retries,
the invocation deadline), keyed by the API names below, which ``thingpress plan``
and ``reconcile`` use too. As the calls answer, ``Owned`` (``results``, "Ownership")
is filled in.

``IotCalls`` is mixed into ``Importer`` (``thingpress.importer.runtime``): it uses the
importer's ``iot``, ``settings``, ``throttle`` and ``arns``.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from thingpress.audit.states import ALREADY_PRESENT, IMPORTED
from thingpress.importer.results import Owned, Rejected
from thingpress.importer.rules import THING_EXISTED, thing_attributes
from thingpress.messages import ImportMessage
from thingpress.throttle import DeadlineExceeded, ThrottleStats, error_code, is_transient

#: IoT error codes on RegisterCertificateWithoutCA that mean "this certificate will never do".
_CERTIFICATE_REFUSED = frozenset({"CertificateValidationException", "InvalidRequestException",
                                  "CertificateStateException", "CertificateConflictException"})

# IoT API names: the keys of the token buckets (settings.DEFAULT_IOT_TPS).
REGISTER = "RegisterCertificateWithoutCA"
CREATE_THING = "CreateThing"
ATTACH_PRINCIPAL = "AttachThingPrincipal"
ATTACH_POLICY = "AttachPolicy"
ADD_TO_GROUP = "AddThingToThingGroup"


def retryable(exc: BaseException) -> bool:
    """Worth another delivery: AWS answered no (it may change: a missing policy is created),
    throttling, 5xx, the network, or the invocation deadline. Anything else is a programming error."""
    return isinstance(exc, (ClientError, DeadlineExceeded)) or is_transient(exc)


def client_error_text(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


class IotCalls:
    """The IoT calls for one certificate (module docstring); mixed into ``Importer``."""

    def _call(self, api: str, fn: Any, tally: ThrottleStats, deadline: float | None, **kwargs: Any) -> Any:
        return self.throttle.call(api, fn, deadline=deadline, tally=tally, **kwargs)

    def _import(self, message: ImportMessage, tally: ThrottleStats,
                deadline: float | None, owned: Owned | None = None) -> tuple[str, str | None, str]:
        """Make the IoT calls; return (status, reason, certificate id). Raises ``Rejected`` or transient errors.

        ``owned`` is filled in as the calls answer: what this manifest created.
        """
        owned = owned if owned is not None else Owned()
        cert_id, cert_arn, registered_now = self._register(message, tally, deadline)
        # On a later delivery "already registered" may be our own earlier attempt's work: unknown (None).
        owned.certificate = True if registered_now else (False if owned.first_delivery else None)

        attributes = thing_attributes(message, self.settings.environment, typed=bool(self.settings.thing_type))
        create: dict[str, Any] = {"thingName": message.thing_name, "attributePayload": {"attributes": attributes}}
        if self.settings.thing_type:
            create["thingTypeName"] = self.settings.thing_type
        thing_existed = False
        try:
            self._call(CREATE_THING, self.iot.create_thing, tally, deadline, **create)
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
            thing_existed = True
        owned.thing = not thing_existed

        if thing_existed and self.settings.existing_thing == "reject":
            if registered_now:
                refusal = Rejected(f"{THING_EXISTED}: thing {message.thing_name!r} exists with other attributes or "
                                   f"type and the existing-thing policy is 'reject'; certificate {cert_id} is "
                                   "registered but not attached")
                refusal.certificate_id = cert_id
                raise refusal
            return ALREADY_PRESENT, f"{THING_EXISTED}: not attached (existing-thing policy 'reject')", cert_id

        self._call(ATTACH_PRINCIPAL, self.iot.attach_thing_principal, tally, deadline,
                   thingName=message.thing_name, principal=cert_arn)
        for policy in self.settings.policy_names:
            self._call(ATTACH_POLICY, self.iot.attach_policy, tally, deadline, policyName=policy, target=cert_arn)
        for group in self.settings.every_thing_group:
            self._call(ADD_TO_GROUP, self.iot.add_thing_to_thing_group, tally, deadline,
                       thingGroupName=group, thingName=message.thing_name)

        if registered_now or not thing_existed:
            return IMPORTED, THING_EXISTED if thing_existed else None, cert_id
        return ALREADY_PRESENT, THING_EXISTED, cert_id

    def _register(self, message: ImportMessage, tally: ThrottleStats,
                  deadline: float | None) -> tuple[str, str, bool]:
        """Register the certificate; return (id, ARN, registered by this call): as AWS answered them."""
        try:
            out = self._call(REGISTER, self.iot.register_certificate_without_ca, tally, deadline,
                             certificatePem=message.certificate_pem, status=self.settings.certificate_status)
        except ClientError as exc:
            code = error_code(exc)
            if code == "ResourceAlreadyExistsException":
                cert_id, cert_arn = self._existing_certificate(exc, message)
                return cert_id, cert_arn, False
            if code in _CERTIFICATE_REFUSED:
                raise Rejected(f"{REGISTER} refused the certificate: {client_error_text(exc)}") from None
            raise
        return out["certificateId"], out["certificateArn"], True

    def _existing_certificate(self, exc: ClientError, message: ImportMessage) -> tuple[str, str]:
        """(id, ARN) of the registered certificate, from the ``ResourceAlreadyExistsException`` AWS answered.

        The error shape's ``resourceId`` and ``resourceArn`` (either gives the other: the ARN ends
        in ``cert/<id>``). Only if the answer carries neither: the SHA-256 of the DER (the
        message's fingerprint), an assumption no API page states, and the ARN built from it.
        """
        answer = exc.response
        cert_id, cert_arn = answer.get("resourceId") or None, answer.get("resourceArn") or None
        if cert_id is None and cert_arn and ":cert/" in cert_arn:
            cert_id = cert_arn.rsplit(":cert/", 1)[1]
        if cert_id is None:
            cert_id = message.fingerprint  # nothing returned: the SHA-256 assumption, the only place it is made
        return cert_id, cert_arn or self.arns.certificate(cert_id)
