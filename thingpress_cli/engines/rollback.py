"""The rollback engine: undoes the imports of some manifests (``thingpress rollback``, ``teardown``).

What is undone is decided by ownership, never by name:

* a **thing** is this rollback's when its ``thingpress_manifest`` attribute names a
  manifest being rolled back and its ``thingpress_env`` (when present) is this
  environment: ``CreateThing`` only succeeds with those attributes, so they say
  who created it. A thing another live manifest of this environment still names
  (the audit table's ``by_thing`` index) is kept whole.
* a **certificate** is this rollback's when the audit row says this manifest
  registered it (``certificate_registered``); when a redelivery could not tell
  (the flag is absent), when it was created after the manifest started. A
  certificate still attached to a thing that is not this rollback's (another
  manifest, another environment) is kept: only this rollback's attachment to it
  is removed.

Steps per certificate row, each one only if the state read just before needs it
(so a rerun after a crash does only what is left, and a finished row is skipped):
detach the certificate from this rollback's thing(s) (``DetachThingPrincipal``);
for this rollback's certificate: detach this environment's policy
(``DetachPolicy``) and deactivate it (``UpdateCertificate`` INACTIVE); with
``delete``: ``DeleteCertificate`` and ``DeleteThing`` (AWS refuses both while
anything is still attached, and an ACTIVE certificate: the order above is what
it asks for, https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteCertificate.html,
https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteThing.html).
Each row then says ``ROLLED_BACK`` with its time, reason and actions, and the
manifest summary too. Every IoT call goes through ``thingpress.throttle`` (the
importer's token buckets and backoff).

This module's one job is deciding what to undo, by ownership, and undoing it in
two passes (every detach, then every delete: why in :mod:`.rollback_calls`, with
the IoT calls, their retries and :class:`~.rollback_calls.Stopped`);
:mod:`.rollback_report` holds what a run reports and how it is printed.

Without ``apply`` (the default of the commands) nothing is changed: the same
reads are made and the report counts what would be done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from thingpress.audit.keys import now_iso
from thingpress.audit.states import ALREADY_PRESENT, FAILED, IMPORTED, REJECTED, ROLLBACK_MODES, ROLLED_BACK
from thingpress.audit.table import AuditTable
from thingpress.importer.rules import ATTR_ENV, ATTR_MANIFEST
from thingpress.throttle import Throttle
from thingpress_cli.engines.rollback_calls import AWS_ERRORS, Stopped, ThrottledCalls, new_throttle
from thingpress_cli.engines.rollback_report import Report

#: the import outcomes a rollback undoes (REJECTED rows created nothing).
#: A REJECTED row counts only when its certificate was registered (existing-thing policy "reject").
UNDOABLE = (IMPORTED, ALREADY_PRESENT, FAILED, REJECTED, ROLLED_BACK)
LIVE = (IMPORTED, ALREADY_PRESENT)


class Rollback(ThrottledCalls):
    """Undo the imports of ``scope`` (manifest ids) in one environment."""

    def __init__(self, iot: Any, table: AuditTable, *, environment: str, policy_names: tuple[str, ...],
                 own_policies: tuple[str, ...], scope: set[str], delete: bool, apply: bool, reason: str,
                 throttle: Throttle | None = None):
        """``policy_names``: the policies the environment's importer attaches; ``own_policies``: those
        its stack created (only these are detached from a certificate it did not register: a
        configured, shared policy may be another environment's attachment too)."""
        self.iot = iot
        self.table = table
        self.environment = environment
        self.policy_names = policy_names
        self.own_policies = own_policies
        self.scope = scope
        self.delete = delete
        self.apply = apply
        self.reason = reason
        self.mode = "delete" if delete else "deactivate"
        self.throttle = throttle or new_throttle()
        self.report = Report(applied=apply, mode=self.mode)
        #: where the run is (for :class:`Stopped`) and the manifests it finished.
        self.at: str | None = None
        self.finished: list[str] = []
        self._things: dict[str, dict[str, Any] | None] = {}
        #: what this rollback deleted or detached (teardown's stack sweep skips them on a dry run).
        self.deleted_things: set[str] = set()
        self.detached_policies: set[tuple[str, str]] = set()
        # What this rollback changed, applied to what it reads next: a dry run then counts
        # each change once, as the real run would (which reads the changed state).
        self._detached_principals: set[tuple[str, str]] = set()
        self._deactivated: set[str] = set()
        self._deleted_certificates: set[str] = set()
        #: the deletes of the row :meth:`row` is undoing (made in the second pass of :meth:`manifests`).
        self._deletes: list[tuple[str, str, Any, str, dict[str, Any]]] = []

    # -- ownership ---------------------------------------------------------------

    def thing(self, name: str) -> dict[str, Any] | None:
        if name in self.deleted_things:
            return None
        if name not in self._things:
            self._things[name] = self._read("DescribeThing", self.iot.describe_thing, thingName=name)
        return self._things[name]

    def owns_thing(self, name: str) -> bool:
        thing = self.thing(name)
        if thing is None:
            return False
        attributes = thing.get("attributes") or {}
        return (attributes.get(ATTR_MANIFEST) in self.scope
                and attributes.get(ATTR_ENV, self.environment) == self.environment)

    def _other_users(self, thing_name: str, mid: str) -> list[str]:
        """Live manifests outside the rollback that name this thing (kept for them)."""
        return sorted({r["manifest_id"] for r in self.table.rows_for_thing(thing_name)
                       if r.get("manifest_id") not in self.scope and r.get("status") in LIVE} - {mid})

    # -- one manifest --------------------------------------------------------------

    def manifest(self, mid: str) -> None:
        """Undo one manifest (:meth:`manifests` of one)."""
        self.manifests([mid])

    def manifests(self, mids: Sequence[str]) -> None:
        """Undo the manifests ``mids`` in two passes: every detach and deactivation first, then every delete.

        A detach takes seconds to propagate and AWS refuses the delete meanwhile (module notes):
        one certificate at a time, each of its deletes would wait out its own detach, seconds per
        certificate. Detaching all first, the deletes come after one propagation at most, which
        the first of them waits out (the others' detaches are older still). Rows and manifests are
        marked done after their deletes, so a run stopped between the passes resumes them.
        """
        staged = [self._detach_manifest(mid) for mid in mids]
        for mid, pending, rolled in staged:
            for row, actions, kept_before, deletes in pending:
                self.at = f"certificate {row['fingerprint']} (thing {row.get('thing_name') or '-'}) of manifest {mid}"
                for what, api, fn, label, kwargs in deletes:
                    self._change(what, api, fn, actions, label, **kwargs)
                kept = [f"{k['kind']} {k['name']}: {k['reason']}" for k in self.report.kept[kept_before:]]
                self.report.counts["rows"] += 1
                if self.apply:
                    self.table.mark_rolled_back(mid, row["fingerprint"], mode=self.mode, reason=self.reason,
                                                actions=actions, kept=kept)
            if self.apply:
                self.at = f"manifest {mid}"
                self.table.finish_rollback(mid, mode=self.mode, reason=self.reason, rolled_back=rolled + len(pending))
            self.finished.append(mid)
        self.at = None

    def _detach_manifest(self, mid: str) -> tuple[str, list[tuple[dict[str, Any], list[str], int, list[Any]]], int]:
        """The first pass over one manifest: (mid, its rows with their actions so far and deletes to make,
        rows already rolled back)."""
        self.at = f"manifest {mid}"
        summary = self.table.get_summary(mid)
        if summary is None:
            raise LookupError(f"manifest {mid}: no such manifest in audit table {self.table.table}")
        self.report.manifests.append(mid)
        if self.apply:
            self.table.begin_rollback(mid, mode=self.mode, reason=self.reason)
        rolled = 0
        pending = []
        for row in self.table.entries(mid):
            if not row["sk"].startswith("C#") or row.get("status") not in UNDOABLE:
                continue
            if row.get("status") == REJECTED and row.get("certificate_registered") is not True:
                continue  # refused before anything was created
            if row.get("status") == ROLLED_BACK and not row.get("rollback_kept") and (
                    ROLLBACK_MODES.index(row.get("rollback_mode", "deactivate"))
                    >= ROLLBACK_MODES.index(self.mode)):
                rolled += 1
                continue
            kept_before = len(self.report.kept)
            self.at = f"certificate {row['fingerprint']} (thing {row.get('thing_name') or '-'}) of manifest {mid}"
            self._deletes = []
            actions = self.row(mid, summary, row)
            pending.append((row, actions, kept_before, self._deletes))
        return mid, pending, rolled

    def _delete_later(self, what: str, api: str, fn: Any, label: str, **kwargs: Any) -> None:
        """A delete for the second pass of :meth:`manifests` (after every detach)."""
        self._deletes.append((what, api, fn, label, kwargs))

    def row(self, mid: str, summary: dict[str, Any], row: dict[str, Any]) -> list[str]:
        """Undo one certificate row; returns the actions, in order."""
        actions: list[str] = []
        thing_name = row.get("thing_name") or ""
        # The id AWS returned to the importer (thingpress.importer.calls). A row without one (no IoT answer, or
        # written before rows recorded it): the SHA-256 of the DER, an assumption no API page states.
        cert_id = row.get("certificate_id") or row["fingerprint"]
        users = self._other_users(thing_name, mid) if thing_name else []
        if users:
            self._keep(actions, "thing", thing_name, f"still used by manifest {', '.join(users)}")
            return actions
        cert = (None if cert_id in self._deleted_certificates else
                self._read("DescribeCertificate", self.iot.describe_certificate, certificateId=cert_id))
        description = dict(cert["certificateDescription"]) if cert else None
        if description is not None and description["certificateId"] in self._deactivated:
            description["status"] = "INACTIVE"
        detached: set[str] = set()
        if description is not None:
            arn = description["certificateArn"]
            ours = self._owns_certificate(row, summary, description)
            things = self._read("ListPrincipalThings", self.iot.list_principal_things, principal=arn) or {}
            attached = [name for name in things.get("things", []) if (arn, name) not in self._detached_principals]
            for name in attached:
                if (name == thing_name and ours) or self.owns_thing(name):
                    self._change("principals_detached", "DetachThingPrincipal", self.iot.detach_thing_principal,
                                 actions, f"DetachThingPrincipal {name}", thingName=name, principal=arn)
                    detached.add(name)
                    self._detached_principals.add((arn, name))
            foreign = [name for name in attached if name not in detached]
            if ours and not foreign:
                self._undo_certificate(description, arn, actions)
            else:
                if ours:
                    self._keep(actions, "certificate", cert_id, f"still attached to thing {', '.join(foreign)}")
                if not any(self._same_environment(name) for name in foreign):
                    self._detach_policies(arn, actions, self.own_policies)  # our attachment; theirs stay
        if thing_name and self.owns_thing(thing_name) and self.delete:
            principals = self._read("ListThingPrincipals", self.iot.list_thing_principals, thingName=thing_name)
            left = [p for p in (principals or {}).get("principals", [])
                    if (p, thing_name) not in self._detached_principals]
            if left:
                self._keep(actions, "thing", thing_name, f"other principals attached: {len(left)}")
            else:
                self._delete_later("things_deleted", "DeleteThing", self.iot.delete_thing,
                                   f"DeleteThing {thing_name}", thingName=thing_name)
                self.deleted_things.add(thing_name)
        return actions

    def _same_environment(self, thing_name: str) -> bool:
        thing = self.thing(thing_name)
        return bool(thing) and (thing.get("attributes") or {}).get(ATTR_ENV) == self.environment

    def _owns_certificate(self, row: dict[str, Any], summary: dict[str, Any], description: dict[str, Any]) -> bool:
        registered = row.get("certificate_registered")
        if registered is not None:
            return bool(registered)
        created = description.get("creationDate")
        started = summary.get("started_at")
        return bool(created and started and now_iso(created) >= started)

    def _detach_policies(self, arn: str, actions: list[str], policies: tuple[str, ...] | None = None) -> list[str]:
        """Detach ``policies`` (default: every policy of the environment) from ``arn``; return those left."""
        mine = self.policy_names if policies is None else policies
        attached = self._read("ListAttachedPolicies", self.iot.list_attached_policies, target=arn) or {}
        left = []
        for policy in [p["policyName"] for p in attached.get("policies", [])]:
            if (policy, arn) in self.detached_policies:
                continue
            if policy in mine:
                self.detached_policies.add((policy, arn))
                self._change("policies_detached", "DetachPolicy", self.iot.detach_policy, actions,
                             f"DetachPolicy {policy}", policyName=policy, target=arn)
            else:
                left.append(policy)
        return left

    def _undo_certificate(self, description: dict[str, Any], arn: str, actions: list[str]) -> None:
        certificate_id = description["certificateId"]
        left = self._detach_policies(arn, actions)
        if description.get("status") == "ACTIVE":
            self._change("certificates_deactivated", "UpdateCertificate", self.iot.update_certificate, actions,
                         "UpdateCertificate INACTIVE", certificateId=certificate_id, newStatus="INACTIVE")
            self._deactivated.add(certificate_id)
        if not self.delete:
            return
        if left:
            self._keep(actions, "certificate", certificate_id, f"other policies attached: {', '.join(left)}")
            return
        self._delete_later("certificates_deleted", "DeleteCertificate", self.iot.delete_certificate,
                           "DeleteCertificate", certificateId=certificate_id)
        self._deleted_certificates.add(certificate_id)

    def _keep(self, actions: list[str], kind: str, name: str, why: str) -> None:
        self.report.counts[f"{kind}s_kept"] += 1
        self.report.kept.append({"kind": kind, "name": name, "reason": why})
        actions.append(f"kept {kind} {name}: {why}")


def engine(deployment: Any, scope: set[str], *, delete: bool, apply: bool, reason: str,
           throttle: Throttle | None = None) -> Rollback:
    from stacks.naming import Names

    outputs = deployment.outputs
    created = outputs.iot_policy_name == Names(outputs.environment, outputs.region).iot_policy
    return Rollback(deployment.client("iot"), deployment.audit_table(), environment=outputs.environment,
                    policy_names=(outputs.iot_policy_name,), own_policies=(outputs.iot_policy_name,) if created else (),
                    scope=scope, delete=delete, apply=apply, reason=reason, throttle=throttle)


def run(deployment: Any, mid: str, *, delete: bool, apply: bool, reason: str,
        throttle: Throttle | None = None) -> Report:
    """Roll back one manifest; an AWS error stops it with :class:`Stopped` (what was done, where)."""
    undo = engine(deployment, {mid}, delete=delete, apply=apply, reason=reason, throttle=throttle)
    try:
        undo.manifest(mid)
    except AWS_ERRORS as error:
        raise Stopped(error, undo) from error
    return undo.report
