"""A lifecycle job's vocabulary and messages: what is asked (``activate``, ``deactivate``), the outcomes a
row records, the job id, where its rows and results files are, and the batch message the function reads.

Nothing here calls AWS: the command (``thingpress_cli.engines.lifecycle``) builds the messages, the
function (``lambdas/lifecycle``) reads them, both with the definitions below.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from thingpress.results.keys import ERRORS_FILE, RESULTS_FILE, RESULTS_PREFIX

ACTIVATE, DEACTIVATE = "activate", "deactivate"
#: certificate statuses (UpdateCertificate ``newStatus``) a job may set.
ACTIVE, INACTIVE, REVOKED = "ACTIVE", "INACTIVE", "REVOKED"
#: the statuses ``thingpress deactivate --status`` takes.
DEACTIVATE_STATUSES = (INACTIVE, REVOKED)

#: a job row's outcome (its ``status``): the change asked for was made, or found made already
#: (``changed`` false); or the entry was refused, unknown, or its IoT call failed.
ACTIVATED, DEACTIVATED = "ACTIVATED", "DEACTIVATED"
REFUSED, UNKNOWN, FAILED = "REFUSED", "UNKNOWN", "FAILED"
#: the outcome a job records for the certificate status it sets.
OUTCOME_OF = {ACTIVE: ACTIVATED, INACTIVE: DEACTIVATED, REVOKED: REVOKED}
OUTCOMES = (ACTIVATED, DEACTIVATED, REVOKED, REFUSED, UNKNOWN, FAILED)
#: the outcomes listed in a job's errors file too.
ERROR_OUTCOMES = (REFUSED, UNKNOWN, FAILED)
#: the job summary's counter of each outcome (rows: one per certificate, or one per unresolved entry).
COUNTER = {outcome: outcome.lower() for outcome in OUTCOMES}

#: ``state`` of a job's summary: its own values, so the ``by_state`` index lists jobs (no scan) and
#: never among the manifests (whose states are ``thingpress.audit.states.MANIFEST_STATES``).
JOB_RUNNING, JOB_COMPLETE = "JOB_RUNNING", "JOB_COMPLETE"
JOB_STATES = (JOB_RUNNING, JOB_COMPLETE)

#: entries per batch message; an entry names at most ``MAX_CERTIFICATES_PER_ENTRY`` certificates, so a
#: batch's rows, its marker and the summary update fit one transaction (DynamoDB: 100 items).
BATCH_ENTRIES = 25
MAX_CERTIFICATES_PER_ENTRY = 3
#: requests/second for the IoT APIs a job calls, beside the deployment's budget (``THINGPRESS_IOT_TPS``,
#: which wins for an API it names): a conservative 10/s each, as ``thingpress rollback`` takes them.
LIFECYCLE_TPS: dict[str, float] = {"DescribeCertificate": 10, "UpdateCertificate": 10, "ListPrincipalThings": 10,
                                   "DescribeThing": 10, "UpdateThing": 10}
#: job ids start with this (``thingpress status`` tells them from manifest ids by it).
JOB_ID_PREFIX = "lc-"


def job_pk(job_id: str) -> str:
    return f"L#{job_id}"


def row_sk(position: int, certificate_id: str | None) -> str:
    """A job row: its entry's position in the list, then the certificate (``-`` for an unresolved entry)."""
    return f"E#{position:09d}#{certificate_id or '-'}"


def batch_sk(batch: int) -> str:
    """A batch's marker: written with the batch's rows, once."""
    return f"B#{batch:06d}"


def job_results_keys(job_id: str) -> dict[str, str]:
    """Where a job's results files are (the manifests bucket, beside the manifests' results)."""
    base = f"{RESULTS_PREFIX}lifecycle/{job_id}/"
    return {"results_key": base + RESULTS_FILE, "errors_key": base + ERRORS_FILE}


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of the operator's list: a thing name, a certificate id or a vendor device id
    (``text``), or a certificate of a manifest (``manifest_id`` set: ``text`` is its certificate id).
    ``attributes``: thing attributes to set on activation."""

    position: int
    text: str
    manifest_id: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"position": self.position, "entry": self.text}
        if self.manifest_id:
            out["manifest_id"] = self.manifest_id
        if self.attributes:
            out["attributes"] = dict(sorted(self.attributes.items()))
        return out

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Entry:
        return cls(int(value["position"]), str(value["entry"]), value.get("manifest_id"),
                   dict(value.get("attributes") or {}))


@dataclass(frozen=True, slots=True)
class Request:
    """What a job asks: the action, the status it sets, the reason recorded, who asked."""

    action: str
    target: str
    reason: str
    requested_by: str

    def __post_init__(self) -> None:
        allowed = (ACTIVE,) if self.action == ACTIVATE else DEACTIVATE_STATUSES if self.action == DEACTIVATE else ()
        if self.target not in allowed:
            raise ValueError(f"{self.action or 'no action'}: cannot set status {self.target!r}")


def job_id(request: Request, entries: Iterable[Entry]) -> str:
    """The job's id: the action, the status, the reason and the entries (attributes included), digested.

    The same request gives the same job: submitting it again resumes it (or finds it done) rather
    than starting another. Who asks is not part of it."""
    digest = hashlib.sha256(json.dumps([request.action, request.target, request.reason]).encode())
    for entry in entries:
        digest.update(json.dumps(entry.as_dict(), sort_keys=True).encode() + b"\n")
    return f"{JOB_ID_PREFIX}{request.action[:3]}-{digest.hexdigest()[:20]}"


@dataclass(frozen=True, slots=True)
class BatchMessage:
    """One batch of a job on the lifecycle queue."""

    job_id: str
    batch: int
    request: Request
    entries: tuple[Entry, ...]

    def encode(self) -> str:
        return json.dumps({"job_id": self.job_id, "batch": self.batch, "action": self.request.action,
                           "target": self.request.target, "reason": self.request.reason,
                           "requested_by": self.request.requested_by,
                           "entries": [e.as_dict() for e in self.entries]}, separators=(",", ":"))

    @classmethod
    def decode(cls, body: str) -> BatchMessage:
        """A message body as :meth:`encode` wrote it; ValueError naming what is wrong."""
        try:
            value = json.loads(body)
            return cls(str(value["job_id"]), int(value["batch"]),
                       Request(value["action"], value["target"], value["reason"], value["requested_by"]),
                       tuple(Entry.from_dict(e) for e in value["entries"]))
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a lifecycle batch message: {exc}") from exc

#: What AWS says of a REVOKED certificate, as the commands' prompts and the refusals say it. The
#: ``UpdateCertificate`` API reference
#: (https://docs.aws.amazon.com/iot/latest/apireference/API_UpdateCertificate.html) lists REVOKED among
#: the statuses it sets and says nothing of leaving it (its errors include CertificateStateException,
#: "The certificate operation is not allowed"); the developer guide does: "Once a certificate is
#: revoked, it's status can't be changed. That is, the certificate status can't be changed to Active
#: or any other status." ("Revoke a client certificate",
#: https://docs.aws.amazon.com/iot/latest/developerguide/revoke-ca-cert.html).
REVOKED_IS_FINAL = ("REVOKED is final: AWS IoT lets no revoked certificate change status, to ACTIVE or any other "
                    "(IoT developer guide, \"Revoke a client certificate\"; the UpdateCertificate API reference "
                    "does not say it)")
