"""The plan engine: what an upload of FILE would do in this account, and how long it would take.

The file is parsed locally exactly as ``inspect`` (and the provider) parse it. Then,
for every distinct accepted certificate, the account is asked, read-only and
throttled (:data:`PROBE_TPS`):

* ``DescribeCertificate(certificateId)`` with the entry's fingerprint, the SHA-256 of
  the DER, as the id, so one call tells whether it is registered. That the id is the
  SHA-256 of the DER is an assumption: no API page says so (AWS IoT and moto behave
  so). The importer, rollback and reconcile use the id AWS returns; a plan registers
  nothing, so AWS returns none here (``ListCertificates`` would page through the
  whole account);
* ``DescribeThing(thingName)`` and, if the thing exists, ``ListThingPrincipals``, with the
  name the deployment's providers give the thing (its outputs' ``thing_name_template`` and
  ``thing_name_prefix``: ``pr7-<name>`` in a preview environment); an entry whose name is no
  valid thing name is refused, as the provider refuses it.

Each certificate falls in exactly one class, checked in this order:

``already_registered``
    the certificate is registered already (whatever its thing);
``thing_conflict``
    the certificate is new but its thing exists with another certificate attached
    (the importer's existing-thing setting decides what happens to it);
``new``
    everything else: a new certificate for a new thing, or for a thing with no
    certificate.

Refused entries (``refused``) and repeats within the file (``duplicates``) are
counted as ``inspect`` counts them. ``eta_seconds`` estimates the time until this
manifest is imported: the import backlog (import queue messages, waiting or in
flight) plus this file's certificates, times the slowest IoT API per certificate
at the lower of the deployed importer's budget (``THINGPRESS_IOT_TPS``, split across
the policies and group it attaches) and the account's quota for that API (the quota
check, ``thingpress_cli.core.quotas``: a budget above a quota is a warning);
``eta_seconds_at_budget`` is the same at the budget alone. Every accepted certificate
costs the same calls, registered or not (see ``thingpress.importer.calls``).

``--json`` prints one JSON document::

    {"file", "vendor", "entries", "new", "already_registered", "thing_conflict", "refused",
     "duplicates", "backlog", "eta_seconds", "eta_seconds_at_budget", "refusals": [{"position", "reason"}],
     "conflicts": [{"position", "thing_name", "principals"}],
     "registered": [{"position", "thing_name", "certificate_id", "status"}],
     "signer_notices": ["..."], "quotas": [{"api", "budget", "quota", ...}], "quotas_as_of"}

(``quotas``: :meth:`thingpress_cli.core.quotas.QuotaCheck.as_dict`.)

For a Microchip manifest, ``signer_notices`` (printed as ``warning:`` lines) names each
trusted signer that has expired or expires within 90 days
(``thingpress.vendors.microchip_signers.signer_notices``): entries signed after a signer's end are
refused, so its successor must be configured in time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from thingpress.importer.calls import ADD_TO_GROUP, ATTACH_POLICY, ATTACH_PRINCIPAL, CREATE_THING, REGISTER
from thingpress.manifest import Scanned, Tally, scan
from thingpress.records import Certificate, Refusal
from thingpress.settings import FunctionSettings
from thingpress.thing_names import ThingNameError, ThingNameTemplate
from thingpress.throttle import Throttle, error_code
from thingpress.vendors import ParseOptions, microchip_signers, parse_manifest
from thingpress_cli.core.quotas import QuotaCheck

NEW, ALREADY_REGISTERED, THING_CONFLICT = "new", "already_registered", "thing_conflict"
CLASSES = (NEW, ALREADY_REGISTERED, THING_CONFLICT)

#: requests/second the plan allows itself per read API: deliberately low (these read APIs have
#: per-account quotas of their own, which other tools may share); ``--read-tps`` raises it.
PROBE_TPS = {"DescribeCertificate": 5.0, "DescribeThing": 20.0, "ListThingPrincipals": 5.0}


def probe_tps(read_tps: float | None) -> dict[str, float]:
    """The read budget: :data:`PROBE_TPS`, or ``--read-tps`` for the two slow APIs (DescribeThing x4)."""
    if read_tps is None:
        return dict(PROBE_TPS)
    return {"DescribeCertificate": read_tps, "ListThingPrincipals": read_tps, "DescribeThing": 4 * read_tps}


@dataclass(frozen=True, slots=True)
class Finding:
    """What the account holds for one certificate of the file."""

    klass: str
    certificate_status: str | None = None
    #: principals of the existing thing (None: no such thing).
    principals: tuple[str, ...] | None = None


class AccountProbe:
    """Read-only questions to IoT, each through a token bucket."""

    def __init__(self, iot: Any, throttle: Throttle | None = None):
        self.iot = iot
        self.throttle = throttle or Throttle(PROBE_TPS)

    def certificate_status(self, certificate_id: str) -> str | None:
        """The certificate's status (ACTIVE, INACTIVE...), None if it is not registered."""
        try:
            out = self.throttle.call("DescribeCertificate", self.iot.describe_certificate, certificateId=certificate_id)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        return str(out["certificateDescription"].get("status", ""))

    def thing_principals(self, thing_name: str) -> tuple[str, ...] | None:
        """Principals attached to the thing, None if the thing does not exist."""
        try:
            self.throttle.call("DescribeThing", self.iot.describe_thing, thingName=thing_name)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        principals: list[str] = []
        kwargs: dict[str, Any] = {"thingName": thing_name}
        while True:
            page = self.throttle.call("ListThingPrincipals", self.iot.list_thing_principals, **kwargs)
            principals.extend(page.get("principals", []))
            if not page.get("nextToken"):
                return tuple(principals)
            kwargs["nextToken"] = page["nextToken"]

    def classify(self, cert: Certificate) -> Finding:
        # The SHA-256 of the DER taken as the certificate id: nothing is registered, so AWS returns no id
        # (module docstring).
        status = self.certificate_status(cert.fingerprint)
        if status is not None:
            return Finding(ALREADY_REGISTERED, certificate_status=status)
        principals = self.thing_principals(cert.thing_name)
        if principals:
            return Finding(THING_CONFLICT, principals=principals)
        return Finding(NEW, principals=principals)


def calls_per_certificate(settings: FunctionSettings) -> dict[str, int]:
    """IoT calls the importer makes for one certificate, per API (see ``thingpress.importer.calls``)."""
    calls = {REGISTER: 1, CREATE_THING: 1, ATTACH_PRINCIPAL: 1}
    if settings.policy_names:
        calls[ATTACH_POLICY] = len(settings.policy_names)
    if settings.every_thing_group:
        calls[ADD_TO_GROUP] = len(settings.every_thing_group)
    return calls


def seconds_per_certificate(settings: FunctionSettings, rates: Mapping[str, float] | None = None) -> float:
    """The slowest API's share: the account-wide budget bounds the whole import, not one instance.

    ``rates``: the pace per API when it is not the budget (the quota check's lower of budget and quota)."""
    default = 10.0
    pace = {**settings.iot_tps, **(rates or {})}
    return max(n / float(pace.get(api, default)) for api, n in calls_per_certificate(settings).items())


def eta_seconds(certificates: int, backlog: int, settings: FunctionSettings,
                rates: Mapping[str, float] | None = None) -> float:
    """Seconds until ``certificates`` queued behind ``backlog`` messages are imported at the budget (or ``rates``)."""
    return round((certificates + backlog) * seconds_per_certificate(settings, rates), 1)


@dataclass
class Plan:
    file: str
    vendor: str
    tally: Tally = field(default_factory=Tally)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    registered: list[dict[str, Any]] = field(default_factory=list)
    backlog: int = 0
    eta: float = 0.0
    #: the ETA at the deployed budget alone (``eta`` is at the lower of budget and quota).
    eta_at_budget: float = 0.0
    #: the deployed budget against the account's quotas (None: not checked).
    quotas: QuotaCheck | None = None
    #: trusted Microchip signers expired or expiring within 90 days (``microchip_signers.signer_notices``).
    signer_notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file, "vendor": self.vendor, "entries": self.tally.entries, **self.counts,
            "refused": self.tally.rejected, "duplicates": self.tally.duplicates, "backlog": self.backlog,
            "eta_seconds": self.eta, "refusals": list(self.tally.errors), "conflicts": self.conflicts,
            "registered": self.registered, "signer_notices": self.signer_notices,
            "eta_seconds_at_budget": self.eta_at_budget, **(self.quotas.as_dict() if self.quotas else {}),
        }


def make_plan(path: Path, vendor: str, options: ParseOptions, probe: AccountProbe, settings: FunctionSettings,
              backlog: int, on_certificate: Callable[[], None] = lambda: None, now: datetime | None = None,
              names: ThingNameTemplate | None = None, quotas: QuotaCheck | None = None) -> Plan:
    """Parse ``path`` and classify every distinct accepted certificate against the account; for a Microchip
    manifest, note the trusted signers expired or expiring soon (at ``now``, default the current time).

    ``names``: how the deployment names things (its outputs' template and prefix; default the
    vendor's names as they are): each thing is looked up by the name the providers give it, and an
    entry whose name is no valid thing name is refused as they refuse it. ``quotas``: the account's
    quotas against the budget; the ETA is then at the lower of the two per API."""
    plan = Plan(str(path), vendor, backlog=backlog, quotas=quotas)
    if vendor == "microchip":
        plan.signer_notices = microchip_signers.signer_notices(options.microchip_signers, now or datetime.now(UTC))
    for cert in _certificates(path, vendor, options, plan.tally, names or ThingNameTemplate()):
        finding = probe.classify(cert)
        plan.counts[finding.klass] += 1
        if finding.klass == THING_CONFLICT:
            plan.conflicts.append({"position": cert.position, "thing_name": cert.thing_name,
                                   "principals": list(finding.principals or ())})
        elif finding.klass == ALREADY_REGISTERED:
            plan.registered.append({"position": cert.position, "thing_name": cert.thing_name,
                                    "certificate_id": cert.fingerprint, "status": finding.certificate_status})
        on_certificate()
    plan.eta_at_budget = eta_seconds(plan.tally.accepted, backlog, settings)
    plan.eta = eta_seconds(plan.tally.accepted, backlog, settings, quotas.rates() if quotas else None)
    return plan


def _certificates(path: Path, vendor: str, options: ParseOptions, tally: Tally,
                  names: ThingNameTemplate) -> Iterator[Certificate]:
    """The distinct accepted certificates, each with the thing name the deployment's providers give it."""
    with path.open("rb") as stream:
        for scanned in scan(parse_manifest(vendor, stream, options)):
            entry = scanned.entry
            if isinstance(entry, Certificate) and not scanned.is_duplicate:
                try:
                    entry = replace(entry, thing_name=names.render(
                        vendor=vendor, name=entry.thing_name, fingerprint=entry.fingerprint,
                        certificate_pem=entry.certificate_pem))
                except ThingNameError as exc:  # the provider refuses it so (thingpress.provider)
                    scanned = Scanned(Refusal(entry.position, exc.reason, thing_name=entry.thing_name,
                                              fingerprint=entry.fingerprint, kind="thing_name"))
            tally.add(scanned)
            if isinstance(scanned.entry, Certificate) and not scanned.is_duplicate:
                yield entry
