"""What one delivery of an import message comes to: ``Outcome`` (and ``Pending``), or ``Rejected`` / ``RetryLater``.

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

Where each is decided: the first three by the IoT calls (``thingpress.importer.calls``);
``REJECTED`` by decoding the message (:meth:`Importer.handle`, ``thingpress.importer.runtime``),
``check_certificate`` (``thingpress.importer.rules``) or IoT's refusal (``calls``); ``FAILED``
by :meth:`Importer.handle`.

Ownership
---------
Each outcome row records ``certificate_registered`` (True: this manifest's delivery
registered the certificate; False: a first delivery found it registered; absent:
a redelivery found it registered, possibly by this message's earlier attempt) and ``thing_created`` (its ``CreateThing``
succeeded, so the thing carries this manifest's attributes) and the
``environment``: what ``thingpress rollback`` / ``teardown`` may undo, versus what
was found already present. No extra IoT call is made for it: ``Owned`` is filled in
as the calls answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from thingpress.audit.outcomes import OutcomeRecord
from thingpress.errors import Refused, ThingpressError
from thingpress.throttle import ThrottleStats


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


@dataclass(slots=True)
class Owned:
    """What one delivery's IoT calls created (None until the call answered, or unknown).

    A first delivery that finds the certificate registered did not register it. A
    later delivery cannot tell: an earlier attempt of the same message may have
    registered it and failed afterwards, so ``certificate`` stays None and the
    rollback decides by the certificate's creation time.
    """

    first_delivery: bool = True
    certificate: bool | None = None
    thing: bool | None = None
