"""The reconcile engine: the audit table against the registry (``thingpress reconcile``).

For every certificate the audit table says ``IMPORTED`` or ``ALREADY_PRESENT``
(one manifest, or every manifest the ``by_state`` index lists), the registry is
asked, read-only and throttled, whether it still holds what the importer set up:

=====================  ======================================  =============================
problem                meaning                                 ``--fix``
=====================  ======================================  =============================
``certificate``        the certificate is not registered       not fixable (no PEM kept)
``status``             not the configured status (ACTIVE)      not changed (may be on purpose)
``thing``              the thing does not exist                ``CreateThing``
``thing_type``         the thing's type is not the configured  ``UpdateThing``
``attachment``         certificate not attached to the thing   ``AttachThingPrincipal``
``policy``             a configured policy is not attached     ``AttachPolicy``
``group``              the thing is not in a configured group  ``AddThingToThingGroup``
                       (each is checked: the importer joins
                       every one)
=====================  ======================================  =============================

A certificate recorded with ``THING_EXISTED`` was attached to a thing thingpress
did not create: its thing type is not checked; one recorded as not attached
(existing-thing policy ``reject``) is checked for registration only.

The configuration (type, group, policies, IoT budget) is the deployed importer's
(``Deployment.importer_settings``). Repairs go through one ``Throttle`` sized by
that budget, so a reconcile never exceeds what the importer may use, and each
repaired certificate's audit row records what was re-applied
(``AuditTable.record_reconciled``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from thingpress.audit.states import ALREADY_PRESENT, IMPORTED, MANIFEST_STATES
from thingpress.audit.table import AuditTable
from thingpress.importer.calls import ADD_TO_GROUP, ATTACH_POLICY, ATTACH_PRINCIPAL, CREATE_THING
from thingpress.importer.rules import ATTR_MANIFEST, THING_EXISTED
from thingpress.settings import FunctionSettings
from thingpress.throttle import Throttle, error_code
from thingpress_cli.engines.plan import PROBE_TPS

CERTIFICATE, STATUS, THING, THING_TYPE, ATTACHMENT, POLICY, GROUP = (
    "certificate", "status", "thing", "thing_type", "attachment", "policy", "group")
#: problems ``--fix`` leaves alone (see the module notes).
NOT_FIXED = frozenset({CERTIFICATE, STATUS})
#: the read APIs reconcile uses, with the plan's conservative budget.
READ_TPS = {**PROBE_TPS, "ListAttachedPolicies": 5.0, "ListThingGroupsForThing": 5.0, "UpdateThing": 10.0}


@dataclass
class Drift:
    manifest: str
    fingerprint: str
    thing_name: str
    certificate_id: str
    problems: list[dict[str, str]] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)

    def add(self, problem: str, detail: str) -> None:
        self.problems.append({"problem": problem, "detail": detail})

    def as_dict(self) -> dict[str, Any]:
        return {"manifest": self.manifest, "fingerprint": self.fingerprint, "thing_name": self.thing_name,
                "certificate_id": self.certificate_id, "problems": self.problems, "fixed": self.fixed}


def _missing(exc: ClientError) -> bool:
    return error_code(exc) == "ResourceNotFoundException"


class Reconciler:
    """Checks (and with ``fix``, repairs) one certificate row at a time."""

    def __init__(self, iot: Any, table: AuditTable, settings: FunctionSettings, *, fix: bool = False,
                 throttle: Throttle | None = None):
        self.iot = iot
        self.table = table
        self.settings = settings
        self.fix = fix
        self.throttle = throttle or Throttle({**READ_TPS, **settings.iot_tps})

    def _call(self, api: str, fn: Any, **kwargs: Any) -> Any:
        return self.throttle.call(api, fn, **kwargs)

    def _pages(self, api: str, fn: Any, key: str, **kwargs: Any) -> Iterator[Any]:
        while True:
            page = self._call(api, fn, **kwargs)
            yield from page.get(key, [])
            if not page.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextToken"]

    def check(self, row: dict[str, Any]) -> Drift:
        fingerprint = str(row.get("fingerprint", ""))
        # The id AWS returned to the importer; without one (rows written before it was recorded), the
        # SHA-256 of the DER: an assumption no API page states.
        cert_id = str(row.get("certificate_id") or fingerprint)
        thing = str(row.get("thing_name") or "")
        drift = Drift(str(row.get("manifest_id", "")), fingerprint, thing, cert_id)
        reason = str(row.get("reason") or "")
        try:
            described = self._call("DescribeCertificate", self.iot.describe_certificate, certificateId=cert_id)
        except ClientError as exc:
            if not _missing(exc):
                raise
            drift.add(CERTIFICATE, f"certificate {cert_id} is not registered")
            return drift
        cert = described["certificateDescription"]
        expected = self.settings.certificate_status
        if cert.get("status") != expected:
            drift.add(STATUS, f"certificate status {cert.get('status')}, expected {expected}")
        if reason.startswith(f"{THING_EXISTED}: not attached"):
            return drift
        arn = cert["certificateArn"]
        thing_exists = self._check_thing(drift, thing, reason)
        principals = set(self._pages("ListThingPrincipals", self.iot.list_thing_principals, "principals",
                                     thingName=thing)) if thing_exists else set()
        if arn not in principals:
            drift.add(ATTACHMENT, f"certificate not attached to thing {thing}")
            self._repair(drift, ATTACHMENT, ATTACH_PRINCIPAL, self.iot.attach_thing_principal,
                         thingName=thing, principal=arn)
        attached = {p["policyName"] for p in self._pages("ListAttachedPolicies", self.iot.list_attached_policies,
                                                          "policies", target=arn)}
        for policy in self.settings.policy_names:
            if policy not in attached:
                drift.add(POLICY, f"policy {policy} not attached to the certificate")
                self._repair(drift, POLICY, ATTACH_POLICY, self.iot.attach_policy, policyName=policy,
                             target=arn)
        wanted = self.settings.every_thing_group  # the importer adds each thing to every one of them
        if wanted:
            groups = ({g["groupName"] for g in self._pages(
                "ListThingGroupsForThing", self.iot.list_thing_groups_for_thing, "thingGroups", thingName=thing)}
                if thing_exists else set())
            for group in wanted:
                if group not in groups:
                    drift.add(GROUP, f"thing {thing} not in group {group}")
                    self._repair(drift, GROUP, ADD_TO_GROUP, self.iot.add_thing_to_thing_group,
                                 thingGroupName=group, thingName=thing)
        if self.fix and drift.fixed:
            self.table.record_reconciled(drift.manifest, fingerprint, drift.fixed)
        return drift

    def _check_thing(self, drift: Drift, thing: str, reason: str) -> bool:
        """Thing present (created by ``--fix`` if not) and of the configured type; False if it is missing."""
        try:
            described = self._call("DescribeThing", self.iot.describe_thing, thingName=thing)
        except ClientError as exc:
            if not _missing(exc):
                raise
            drift.add(THING, f"thing {thing} does not exist")
            create: dict[str, Any] = {"thingName": thing, "attributePayload": {"attributes": {
                ATTR_MANIFEST: drift.manifest}}}
            if self.settings.thing_type:
                create["thingTypeName"] = self.settings.thing_type
            return self._repair(drift, THING, CREATE_THING, self.iot.create_thing, **create)
        expected = self.settings.thing_type
        found = described.get("thingTypeName") or ""
        if expected and found != expected and not reason.startswith(THING_EXISTED):
            drift.add(THING_TYPE, f"thing type {found or 'none'}, expected {expected}")
            self._repair(drift, THING_TYPE, "UpdateThing", self.iot.update_thing, thingName=thing,
                         thingTypeName=expected)
        return True

    def _repair(self, drift: Drift, problem: str, api: str, fn: Any, **kwargs: Any) -> bool:
        if not self.fix:
            return False
        self._call(api, fn, **kwargs)
        drift.fixed.append(problem)
        return True


def certificate_rows(table: AuditTable, mid: str | None) -> Iterator[dict[str, Any]]:
    """The rows to check: one manifest's, or every manifest's (each manifest the ``by_state`` index lists,
    its rows read from the table: no index of certificate rows is kept for this rare sweep, see
    ``thingpress.audit``, "Global secondary indexes")."""
    wanted = (IMPORTED, ALREADY_PRESENT)
    for manifest in [mid] if mid is not None else table.listed_by_state(MANIFEST_STATES):
        yield from (r for r in table.iter_entries(manifest) if r.get("status") in wanted)


def reconcile(reconciler: Reconciler, rows: Iterator[dict[str, Any]]) -> dict[str, Any]:
    checked = 0
    items: list[dict[str, Any]] = []
    by_problem: dict[str, int] = {}
    for row in rows:
        checked += 1
        drift = reconciler.check(row)
        if drift.problems:
            items.append(drift.as_dict())
            for p in drift.problems:
                by_problem[p["problem"]] = by_problem.get(p["problem"], 0) + 1
    fixed = sum(1 for i in items if i["fixed"] and all(p["problem"] in i["fixed"] for p in i["problems"]))
    return {"checked": checked, "drift": len(items), "fixed": fixed, "by_problem": dict(sorted(by_problem.items())),
            "items": items}
