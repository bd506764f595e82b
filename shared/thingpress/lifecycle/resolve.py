"""Which certificates an entry of a lifecycle list names, through the audit table; never guessed.

An entry is, tried in this order:

1. a certificate of a manifest (``thingpress activate MANIFEST``: the command read the manifest's
   rows): that row, read again by its key;
2. a certificate id (64 hex digits): the certificate in IoT (``DescribeCertificate``), its things
   (``ListPrincipalThings``) and their audit rows (``by_thing``) naming that certificate;
3. a thing name: the certificates its audit rows name (``by_thing``);
4. a vendor device id (Microchip uniqueId, Infineon chip id, Espressif MAC: the ``{name}`` of the
   deployment's thing name template, ``thingpress.thing_names``): the thing names the template
   gives it for each vendor, then as 3. A template that names things by ``{serial}`` or
   ``{fingerprint}`` gives no thing name from a device id: such an entry is unknown.

Only rows of a certificate the import registered or found (``IMPORTED``, ``ALREADY_PRESENT``)
count. An entry that names no certificate, names things of two devices, or more than
``MAX_CERTIFICATES_PER_ENTRY`` certificates, is :class:`Unresolved` with the reason: reported,
never acted on.

The ``by_thing`` index is eventually consistent: a row the import wrote a moment ago may be missing
from it, or show its older status (DynamoDB developer guide, GSI.Writes). An operator lists things
that are imported, so the rows that matter were written before the job's batch was sent: a batch
reads the index no sooner than ``INDEX_SETTLE_SECONDS`` after it was sent (:meth:`Resolver.settle`,
once per batch; entries of a manifest are read by key, consistently, and do not wait).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from thingpress import patterns
from thingpress.audit.keys import certificate_sk, from_item, manifest_pk, to_item
from thingpress.audit.queries import INDEX_SETTLE_SECONDS
from thingpress.audit.states import ALREADY_PRESENT, IMPORTED
from thingpress.audit.table import AuditTable
from thingpress.lifecycle.jobs import MAX_CERTIFICATES_PER_ENTRY, Entry
from thingpress.thing_names import ThingNameError, ThingNameTemplate
from thingpress.throttle import Throttle, error_code
from thingpress.vendors import VENDORS

#: the import outcomes whose certificate exists in IoT as the import left it.
LIVE = (IMPORTED, ALREADY_PRESENT)
CERTIFICATE_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Target:
    """A certificate an entry names, from its audit row."""

    certificate_id: str
    thing_name: str | None
    manifest_id: str
    vendor: str | None
    #: how the entry named it: ``manifest``, ``certificate``, ``thing`` or ``device``.
    how: str


@dataclass(frozen=True, slots=True)
class Unresolved:
    reason: str


class Resolver:
    """Resolves entries with the audit table and, for certificate ids, IoT (through ``throttle``).

    ``clock`` (epoch seconds, as SQS's ``SentTimestamp``) and ``sleep`` are what :meth:`settle` waits with.
    """

    def __init__(self, table: AuditTable, iot: Any, throttle: Throttle, names: ThingNameTemplate, *,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        self.table, self.iot, self.throttle, self.names = table, iot, throttle, names
        self.clock, self.sleep = clock, sleep
        self._device_ids = not ({"serial", "fingerprint"} & set(names.placeholders))

    def settle(self, sent_at: float) -> float:
        """Wait until the ``by_thing`` index holds what was written before ``sent_at`` (epoch seconds):
        ``INDEX_SETTLE_SECONDS`` after it; the seconds waited."""
        wait = sent_at + INDEX_SETTLE_SECONDS - self.clock()
        if wait <= 0:
            return 0.0
        self.sleep(wait)
        return wait

    def resolve(self, entry: Entry) -> list[Target] | Unresolved:
        if entry.manifest_id:
            return self._of_manifest(entry)
        text = entry.text
        if CERTIFICATE_ID.fullmatch(text):
            return self._of_certificate(text)
        found = self._of_thing(text, "thing")
        if found:
            return self._bounded(text, found)
        return self._of_device(text)

    def _of_manifest(self, entry: Entry) -> list[Target] | Unresolved:
        got = self.table.client.get_item(TableName=self.table.table, ConsistentRead=True, Key=to_item(
            {"pk": manifest_pk(str(entry.manifest_id)), "sk": certificate_sk(entry.text)}))
        row = from_item(got["Item"]) if "Item" in got else None
        if row is None or row.get("status") not in LIVE or not row.get("certificate_id"):
            return Unresolved(f"manifest {entry.manifest_id} imported no certificate {entry.text}")
        return [_target(row, "manifest")]

    def _of_certificate(self, certificate_id: str) -> list[Target] | Unresolved:
        try:
            described = self.throttle.call("DescribeCertificate", self.iot.describe_certificate,
                                           certificateId=certificate_id)["certificateDescription"]
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return Unresolved(f"no certificate {certificate_id} in AWS IoT")
            raise
        things = self.throttle.call("ListPrincipalThings", self.iot.list_principal_things,
                                    principal=described["certificateArn"]).get("things", [])
        found = [t for name in things for t in self._of_thing(name, "certificate")
                 if t.certificate_id == certificate_id]
        if not found:
            return Unresolved(f"certificate {certificate_id} has no audit row of an import (not imported by "
                              "thingpress, or its thing was detached)")
        return found[:1]

    def _of_thing(self, thing_name: str, how: str) -> list[Target]:
        rows = [r for r in self.table.rows_for_thing(thing_name)
                if r.get("status") in LIVE and r.get("certificate_id") and str(r.get("pk", "")).startswith("M#")]
        by_certificate = {r["certificate_id"]: _target(r, how) for r in sorted(rows, key=lambda r: r["updated_at"])}
        return list(by_certificate.values())

    def _of_device(self, device_id: str) -> list[Target] | Unresolved:
        unknown = Unresolved(f"{device_id}: no thing, certificate or device of that name in the audit table")
        if not self._device_ids:
            return Unresolved(f"{unknown.reason} (the thing name template {self.names.template!r} does not "
                              "name things by device id)") if patterns.THING_NAME.fullmatch(device_id) else unknown
        names = set()
        for vendor in VENDORS:
            try:
                names.add(self.names.render(vendor=vendor, name=device_id, fingerprint=""))
            except ThingNameError:
                continue
        found = {name: self._of_thing(name, "device") for name in sorted(names - {device_id})}
        found = {name: targets for name, targets in found.items() if targets}
        if not found:
            return unknown
        if len(found) > 1:
            return Unresolved(f"device id {device_id} names things {', '.join(found)}: list the thing name")
        ((_, targets),) = found.items()
        return self._bounded(device_id, targets)

    @staticmethod
    def _bounded(text: str, targets: list[Target]) -> list[Target] | Unresolved:
        if len(targets) > MAX_CERTIFICATES_PER_ENTRY:
            return Unresolved(f"{text} names {len(targets)} certificates (at most {MAX_CERTIFICATES_PER_ENTRY} an "
                              "entry): list their certificate ids")
        return targets


def _target(row: dict[str, Any], how: str) -> Target:
    return Target(row["certificate_id"], row.get("thing_name"), row["manifest_id"], row.get("vendor"), how)
