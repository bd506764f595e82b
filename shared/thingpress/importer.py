"""Import one certificate: an import message in, a registered certificate and its thing out.

Pure logic over an injected IoT client and ``AuditTable``; the Lambda handler
(``lambdas/importer/import_handler.py``) only wires it to SQS, logs and metrics.

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
   call) and the ARN derived as ``arn:<partition>:iot:<region>:<account>:cert/<id>``;
   there is no ``DescribeCertificate``. An existing certificate's status is left
   alone (an operator may have deactivated it on purpose). The id goes into the
   outcome row (``certificate_id``), for rollback and reconcile.
2. ``CreateThing`` with the configured thing type and the attributes that mark
   the thing as imported and say who owns it: ``thingpress_manifest``,
   ``thingpress_vendor``, ``thingpress_env`` (the environment suffix) and, for a
   thing with a type, ``thingpress_queued``. IoT allows 50 attributes on a thing
   with a thing type but only 3 on a thing without one (AWS IoT Core quotas,
   https://docs.aws.amazon.com/general/latest/gr/iot-core.html#limits_iot,
   "Thing attributes"; names and values:
   https://docs.aws.amazon.com/iot/latest/apireference/API_ThingAttribute.html),
   so without a type ``thingpress_queued`` is left out. Every value comes from the
   message and the function's settings, so a redelivery sends the identical
   request and AWS answers it as a success.
   ``ResourceAlreadyExistsException`` means the thing exists with other attributes
   or another type: the ``existing_thing`` setting decides (below).
3. ``AttachThingPrincipal``; 4. ``AttachPolicy`` per configured policy;
5. ``AddThingToThingGroup`` per configured group. All three are idempotent.

A certificate that is already registered costs the same five calls (the two
failed creations included): the attachments are repeated on purpose, because an
earlier attempt may have stopped half-way, and they are idempotent.

Ownership
---------
Each outcome row records ``certificate_registered`` (True: this manifest's delivery
registered the certificate; False: a first delivery found it registered; absent:
a redelivery found it registered, possibly by this message's earlier attempt) and ``thing_created`` (its ``CreateThing``
succeeded, so the thing carries this manifest's attributes) and the
``environment``: what ``thingpress rollback`` / ``teardown`` may undo, versus what
was found already present. No extra IoT call is made for it.

Outcome rule
------------
* ``IMPORTED``: this delivery registered the certificate, **or** ``CreateThing``
  succeeded, i.e. the thing now carries this manifest's attributes (either created
  now, or an identical earlier request: a redelivery of our own import).
* ``ALREADY_PRESENT``: the certificate was registered before **and** the thing
  existed with other attributes -- typically a re-upload of a manifest, which is a
  new manifest id and so a new audit partition. Reason ``THING_EXISTED``.
* A new certificate whose thing existed with other attributes: with
  ``existing_thing="keep"`` (default) the thing is left untouched, the
  certificate is attached anyway and the outcome is ``IMPORTED`` with reason
  ``THING_EXISTED``; with ``"reject"`` nothing is attached and the outcome is
  ``REJECTED`` (the certificate stays registered, unattached: the reason says so).
  Under ``"reject"`` an already-registered certificate with an existing thing is
  ``ALREADY_PRESENT`` and nothing is attached (we never link a certificate to a
  thing this manifest did not create).
* ``REJECTED``: a poison message -- not an import message, a PEM that is not
  exactly one X.509 certificate, a fingerprint that does not match the PEM, an
  invalid thing name, or a certificate IoT refuses. Recorded with the reason; the
  SQS record succeeds (it is deleted, never retried).
* ``FAILED``: anything transient (throttled beyond the retries, 5xx, network, a
  missing policy/group/type, the invocation deadline) fails the SQS record so SQS
  delivers it again. On the delivery whose ``ApproximateReceiveCount`` reaches the
  queue's ``maxReceiveCount`` the outcome ``FAILED`` with the last error is
  recorded first and the record still fails: SQS then moves the message to the DLQ
  and the audit row already says why. (Recording before failing, not after, is the
  only order that cannot lose the row: nothing runs once the message is in the DLQ.)
  Transient means an AWS error answer (``ClientError``), ``throttle.is_transient``
  (throttling, 5xx, network) or the deadline. Anything else is a programming error
  (``TypeError``, ``KeyError`` ...) that every delivery would repeat: ``FAILED`` is
  recorded at once with reason ``internal error (not retried): <type>: <text>``,
  the traceback is logged, and the SQS record succeeds.

Idempotency
-----------
The outcome is written by ``record_outcome``, a conditional transaction keyed by
manifest id and fingerprint (nothing random); when two deliveries race, the
second write changes nothing and the summary counters move once.

A delivery SQS counts as a redelivery (``ApproximateReceiveCount`` > 1) reads
``AuditTable.get_outcome(manifest, fingerprint)`` before any IoT call: a
certificate with a terminal outcome is done and nothing is called. A first
delivery skips that read (one DynamoDB request per certificate saved on the
normal path) and writes optimistically; if the write finds a row -- a duplicate
copy of the message, or an operator's DLQ redrive -- the row is read then. Either
way a ``FAILED`` row gives way: such a message can only come back by a DLQ
redrive, so it is imported again and ``resolve_failed`` replaces the FAILED row
(keeping the old error as ``previous_failure``) and moves the count from
``failed`` to the new status. Any other existing outcome stands (``redelivery``).

``complete=False`` on :meth:`Importer.handle` leaves the manifest's completion
check to the caller, which calls :meth:`Importer.complete` once per batch.

Batched writes: with a ``pending`` list, a first delivery's outcome is not
written at once but queued there, and :meth:`Importer.record_pending` writes the
whole batch in one transaction per manifest (``AuditTable.record_outcomes``),
then settles each outcome (recorded, or found to be a redelivery). The Lambda
handler does this at the end of each batch, before it answers SQS.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from thingpress.arns import Arn
from thingpress.attributes import MAX_WITH_TYPE
from thingpress.audit.outcomes import OutcomeRecord
from thingpress.audit.states import ALREADY_PRESENT, FAILED, IMPORTED, REJECTED
from thingpress.audit.table import AuditTable
from thingpress.errors import Refused, ThingpressError
from thingpress.messages import ImportMessage, MessageError, decode
from thingpress.patterns import FINGERPRINT, MANIFEST_ID, THING_NAME
from thingpress.settings import FunctionSettings
from thingpress.throttle import DeadlineExceeded, Throttle, ThrottleStats, error_code, is_transient

#: thing attribute names (AWS: letters, digits, ``_.,@/:#-``; at most 128 characters).
ATTR_MANIFEST = "thingpress_manifest"
ATTR_VENDOR = "thingpress_vendor"
ATTR_QUEUED = "thingpress_queued"
ATTR_ENV = "thingpress_env"
#: AWS IoT: a thing without a thing type may have at most 3 attributes.
MAX_UNTYPED_ATTRIBUTES = 3

#: reason recorded when the thing existed with other attributes or type.
THING_EXISTED = "THING_EXISTED"
#: reason prefix of a FAILED outcome caused by a programming error (recorded at once, not retried).
INTERNAL_ERROR = "internal error (not retried)"

logger = Logger(service="thingpress-importer")

_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"

#: IoT error codes on RegisterCertificateWithoutCA that mean "this certificate will never do".
_CERTIFICATE_REFUSED = frozenset({"CertificateValidationException", "InvalidRequestException",
                                  "CertificateStateException", "CertificateConflictException"})

# IoT API names: the keys of the token buckets (settings.DEFAULT_IOT_TPS).
REGISTER = "RegisterCertificateWithoutCA"
CREATE_THING = "CreateThing"
ATTACH_PRINCIPAL = "AttachThingPrincipal"
ATTACH_POLICY = "AttachPolicy"
ADD_TO_GROUP = "AddThingToThingGroup"


class Rejected(Refused):
    """A permanent problem with the message: recorded as REJECTED, never retried.

    ``certificate_id``: the certificate registered before the refusal (existing-thing policy
    "reject"), recorded on the row so a rollback finds it.
    """

    certificate_id: str | None = None


class RetryLater(ThingpressError):
    """A transient failure: the SQS record must fail so that SQS delivers it again.

    ``final`` is True when this was the last delivery before the DLQ and the
    ``FAILED`` outcome has been recorded (``recorded`` says whether this delivery
    wrote it). ``tally`` holds the IoT calls made, for metrics.
    """

    def __init__(self, reason: str, *, manifest_id: str, fingerprint: str, final: bool, recorded: bool,
                 tally: ThrottleStats, deadline: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.manifest_id = manifest_id
        self.fingerprint = fingerprint
        self.final = final
        self.recorded = recorded
        self.tally = tally
        self.deadline = deadline


@dataclass(frozen=True, slots=True)
class CertificateArns:
    """Builds certificate ARNs without asking IoT (``DescribeCertificate`` costs 10 TPS)."""

    partition: str
    region: str
    account: str

    @classmethod
    def from_function_arn(cls, function_arn: str, region: str | None = None) -> CertificateArns:
        """From the Lambda context's ``invoked_function_arn``: ``arn:<p>:lambda:<region>:<account>:function:<name>``."""
        try:
            arn = Arn.parse(function_arn)
        except ValueError:
            arn = None
        if arn is None or not arn.account:
            raise ValueError(f"not a Lambda function ARN: {function_arn!r}")
        return cls(partition=arn.partition, region=region or arn.region, account=arn.account)

    def certificate(self, certificate_id: str) -> str:
        return f"arn:{self.partition}:iot:{self.region}:{self.account}:cert/{certificate_id}"


@dataclass(slots=True)
class Outcome:
    """What one delivery did."""

    manifest_id: str | None
    fingerprint: str | None
    status: str
    reason: str | None = None
    certificate_id: str | None = None
    #: this delivery wrote the outcome row (and moved the counters).
    recorded: bool = False
    #: the outcome existed before this delivery: nothing was done.
    redelivery: bool = False
    thing_name: str | None = None
    tally: ThrottleStats = field(default_factory=ThrottleStats)
    #: this manifest registered the certificate / created the thing (None: no IoT result).
    certificate_registered: bool | None = None
    thing_created: bool | None = None


@dataclass(slots=True)
class Pending:
    """An outcome queued for :meth:`Importer.record_pending`, and the SQS message it came from."""

    record: OutcomeRecord
    outcome: Outcome
    message_id: str


def thing_attributes(message: ImportMessage, environment: str = "", *, typed: bool = False) -> dict[str, str]:
    """Deterministic per message: a redelivery sends the identical ``CreateThing``.

    The thingpress attributes always (manifest, vendor, the environment when set,
    the time queued); without a thing type (``typed``) IoT allows 3 and
    ``thingpress_queued`` is the one left out when the environment takes its place.
    With a thing type also the device facts the message carries
    (``thingpress.attributes``), up to IoT's 50.
    """
    own = {ATTR_MANIFEST: message.manifest_id, ATTR_VENDOR: message.vendor}
    if environment:
        own[ATTR_ENV] = environment
    if typed or len(own) < MAX_UNTYPED_ATTRIBUTES:
        own[ATTR_QUEUED] = message.queued_at
    if not typed or not message.attributes:
        return own
    extra = sorted((k, v) for k, v in message.attributes.items() if k not in own)
    return {**own, **dict(extra[:MAX_WITH_TYPE - len(own)])}


def check_certificate(message: ImportMessage) -> None:
    """Raise ``Rejected`` unless the PEM is exactly one certificate whose DER hashes to the fingerprint."""
    pem = message.certificate_pem
    count = pem.count(_PEM_BEGIN)
    if count != 1:
        raise Rejected(f"certificate_pem holds {count} PEM certificates, expected exactly 1")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, x509.InvalidVersion) as exc:
        raise Rejected(f"certificate_pem is not a PEM X.509 certificate: {exc}") from None
    actual = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    if actual != message.fingerprint:
        raise Rejected(f"fingerprint mismatch: message says {message.fingerprint}, "
                       f"the certificate's DER hashes to {actual}")
    if not THING_NAME.fullmatch(message.thing_name):
        raise Rejected(f"invalid thing name {message.thing_name!r}: AWS IoT needs 1-128 characters "
                       "of letters, digits, ':', '_' or '-'")


def _retryable(exc: BaseException) -> bool:
    """Worth another delivery: AWS answered no (it may change: a missing policy is created),
    throttling, 5xx, the network, or the invocation deadline. Anything else is a programming error."""
    return isinstance(exc, (ClientError, DeadlineExceeded)) or is_transient(exc)


def _client_error_text(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


@dataclass(slots=True)
class _Owned:
    """What one delivery's IoT calls created (None until the call answered, or unknown).

    A first delivery that finds the certificate registered did not register it. A
    later delivery cannot tell: an earlier attempt of the same message may have
    registered it and failed afterwards, so ``certificate`` stays None and the
    rollback decides by the certificate's creation time.
    """

    first_delivery: bool = True
    certificate: bool | None = None
    thing: bool | None = None


class Importer:
    """Imports certificates one message at a time; safe to share between threads."""

    def __init__(self, iot: Any, audit: AuditTable, settings: FunctionSettings, *, arns: CertificateArns,
                 throttle: Throttle | None = None, start_margin: float = 5.0):
        self.iot = iot
        self.audit = audit
        self.settings = settings
        self.arns = arns
        self.throttle = throttle or Throttle.from_settings(settings)
        #: seconds a message needs at least before the deadline to be started.
        self.start_margin = start_margin

    # -- entry point -----------------------------------------------------------

    def handle(self, body: str, *, message_id: str, receive_count: int = 1,
               deadline: float | None = None, complete: bool = True,
               pending: list[Pending] | None = None) -> Outcome:
        """Process one SQS message body. Returns the outcome or raises ``RetryLater``.

        ``deadline`` is an instant on ``self.throttle.clock`` (None: no deadline).
        ``complete=False``: do not check the manifest for completion (see :meth:`complete`).
        ``pending``: queue a first delivery's outcome there instead of writing it
        (see :meth:`record_pending`); the returned outcome is settled by that call.
        """
        try:
            message = decode(body)
        except MessageError as exc:
            return self._reject_unreadable(body, message_id, f"invalid import message: {exc.reason}")

        mid, fp = message.manifest_id, message.fingerprint
        tally = ThrottleStats()
        final = receive_count >= self.settings.max_receive_count
        try:
            if self.throttle.remaining(deadline) < self.start_margin:
                raise DeadlineExceeded("start", self.start_margin, self.throttle.remaining(deadline))
            existing = self.audit.get_outcome(mid, fp) if receive_count > 1 else None
            if existing is not None and existing["status"] != FAILED:
                return self._existing(message, existing, tally)
            owned = _Owned(first_delivery=receive_count == 1 and existing is None)
            try:
                check_certificate(message)
                status, reason, cert_id = self._import(message, tally, deadline, owned)
            except Rejected as exc:
                status, reason, cert_id = REJECTED, exc.reason, exc.certificate_id
            outcome = Outcome(mid, fp, status, reason, cert_id, thing_name=message.thing_name, tally=tally,
                              certificate_registered=owned.certificate, thing_created=owned.thing)
            record = OutcomeRecord(mid, fp, status, vendor=message.vendor, position=message.position,
                                   thing_name=message.thing_name, reason=reason, certificate_id=cert_id,
                                   attempts=receive_count, environment=self.settings.environment or None,
                                   certificate_registered=owned.certificate, thing_created=owned.thing)
            if existing is not None:  # redriven from the DLQ: the FAILED row gives way to the real outcome
                self._replace_failed(record, outcome, existing)
            elif pending is not None:
                pending.append(Pending(record, outcome, message_id))
            else:
                outcome.recorded = self.audit.record_outcome(
                    mid, fp, status, vendor=message.vendor, position=message.position,
                    thing_name=message.thing_name, reason=reason, certificate_id=cert_id, attempts=receive_count,
                    complete=complete, environment=record.environment,
                    certificate_registered=record.certificate_registered, thing_created=record.thing_created)
                if not outcome.recorded:
                    self._settle_unwritten(record, outcome)
            return outcome
        except Exception as exc:  # noqa: BLE001 -- AWS said no or is unreachable: retry, FAILED at the end
            if not _retryable(exc):
                return self._internal_error(message, exc, receive_count, complete)
            reason = (f"invocation deadline: {exc}" if isinstance(exc, DeadlineExceeded)
                      else _client_error_text(exc))
            recorded = False
            if final:
                recorded = self.audit.record_outcome(
                    mid, fp, FAILED, vendor=message.vendor, position=message.position,
                    thing_name=message.thing_name, reason=f"after {receive_count} deliveries: {reason}",
                    attempts=receive_count, complete=complete)
            raise RetryLater(reason, manifest_id=mid, fingerprint=fp, final=final, recorded=recorded, tally=tally,
                             deadline=isinstance(exc, DeadlineExceeded)) from exc

    def _internal_error(self, message: ImportMessage, exc: Exception, receive_count: int, complete: bool) -> Outcome:
        """A programming error (TypeError, KeyError ...): another delivery would fail the same way.

        Recorded at once as ``FAILED`` with the error as the reason (the row can still
        give way to a later DLQ redrive, see ``resolve_failed``); the message is done.
        """
        logger.exception("internal error importing a certificate; recorded FAILED, not retried",
                         extra={"manifest_id": message.manifest_id, "fingerprint": message.fingerprint})
        reason = f"{INTERNAL_ERROR}: {type(exc).__name__}: {exc}"
        recorded = self.audit.record_outcome(
            message.manifest_id, message.fingerprint, FAILED, vendor=message.vendor, position=message.position,
            thing_name=message.thing_name, reason=reason, attempts=receive_count, complete=complete)
        return Outcome(message.manifest_id, message.fingerprint, FAILED, reason, recorded=recorded,
                       redelivery=not recorded, thing_name=message.thing_name)

    @staticmethod
    def _existing(message: ImportMessage, row: dict[str, Any], tally: ThrottleStats) -> Outcome:
        """The outcome an earlier delivery recorded: this one changes nothing."""
        return Outcome(message.manifest_id, message.fingerprint, row["status"], row.get("reason"),
                       row.get("certificate_id"), redelivery=True, thing_name=message.thing_name, tally=tally)

    def _settle_unwritten(self, record: OutcomeRecord, outcome: Outcome) -> None:
        """The conditional write found a row (a duplicate copy, or a DLQ redrive): settle ``outcome`` by it."""
        existing = self.audit.get_outcome(record.manifest_id, record.fingerprint)
        if existing is None:
            return
        if existing["status"] == FAILED:
            self._replace_failed(record, outcome, existing)
        else:
            outcome.status, outcome.reason = existing["status"], existing.get("reason")
            outcome.certificate_id, outcome.redelivery = existing.get("certificate_id"), True

    def _replace_failed(self, record: OutcomeRecord, outcome: Outcome, failed: dict[str, Any]) -> None:
        outcome.recorded = self.audit.resolve_failed(
            record.manifest_id, record.fingerprint, record.status, reason=record.reason,
            certificate_id=record.certificate_id, attempts=record.attempts, previous_failure=failed.get("reason"),
            environment=record.environment, certificate_registered=record.certificate_registered,
            thing_created=record.thing_created)

    def record_pending(self, pending: list[Pending]) -> None:
        """Write queued outcomes (one transaction per manifest) and settle each one's ``Outcome``.

        An outcome whose row turned out to exist is settled as that row says
        (``redelivery``), or, if the row is ``FAILED``, replaces it
        (``resolve_failed``), exactly as :meth:`handle` does without ``pending``.
        """
        if not pending:
            return
        written = self.audit.record_outcomes([p.record for p in pending])
        for item, recorded in zip(pending, written, strict=True):
            item.outcome.recorded = recorded
            if not recorded:
                self._settle_unwritten(item.record, item.outcome)

    def complete(self, manifest_ids: Iterable[str]) -> None:
        """Mark each manifest COMPLETE if it is (after a batch handled with ``complete=False``)."""
        for mid in sorted(set(manifest_ids)):
            self.audit.try_complete(mid)

    # -- poison messages -----------------------------------------------------

    def _reject_unreadable(self, body: str, message_id: str, reason: str) -> Outcome:
        """Record a message that fails the schema: against its manifest when it names one that exists."""
        data: Any = None
        try:
            data = json.loads(body)
        except (ValueError, TypeError):
            pass
        if isinstance(data, dict):
            mid, fp = data.get("manifest_id"), data.get("fingerprint")
            if (isinstance(mid, str) and MANIFEST_ID.fullmatch(mid) and isinstance(fp, str) and FINGERPRINT.fullmatch(fp)
                    and self.audit.get_summary(mid) is not None):
                position = data.get("position")
                thing = data.get("thing_name")
                vendor = data.get("vendor")
                recorded = self.audit.record_outcome(
                    mid, fp, REJECTED, vendor=vendor if isinstance(vendor, str) else "",
                    position=position if isinstance(position, int) and not isinstance(position, bool) else 0,
                    thing_name=thing if isinstance(thing, str) else None, reason=reason)
                return Outcome(mid, fp, REJECTED, reason, recorded=recorded,
                               thing_name=thing if isinstance(thing, str) else None)
        # Cannot be attributed to a known manifest: keyed by the SQS message id (stable across redeliveries).
        self.audit.record_unreadable(message_id, reason)
        return Outcome(None, None, REJECTED, reason, recorded=True)

    # -- the IoT calls -----------------------------------------------------------

    def _call(self, api: str, fn: Any, tally: ThrottleStats, deadline: float | None, **kwargs: Any) -> Any:
        return self.throttle.call(api, fn, deadline=deadline, tally=tally, **kwargs)

    def _import(self, message: ImportMessage, tally: ThrottleStats,
                deadline: float | None, owned: _Owned | None = None) -> tuple[str, str | None, str]:
        """Make the IoT calls; return (status, reason, certificate id). Raises ``Rejected`` or transient errors.

        ``owned`` is filled in as the calls answer: what this manifest created.
        """
        owned = owned if owned is not None else _Owned()
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
                raise Rejected(f"{REGISTER} refused the certificate: {_client_error_text(exc)}") from None
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


__all__ = [
    "ATTR_ENV", "ATTR_MANIFEST", "ATTR_QUEUED", "ATTR_VENDOR", "THING_EXISTED", "CertificateArns", "Importer", "Outcome",
    "Pending", "Rejected", "RetryLater", "check_certificate", "thing_attributes",
]
