"""The completion event: one EventBridge event when a manifest becomes COMPLETE.

Other systems react to an import without polling the audit table: a rule on the
deployment's event bus (``THINGPRESS_EVENT_BUS``) matching ``source`` ``thingpress``
and ``detail-type`` ``Manifest Completed`` gets::

    {"manifest_id": "...", "vendor": "...", "environment": "...", "state": "COMPLETE",
     "bucket": "...", "key": "...", "version_id": "...", "completed_at": "...",
     "counts": {"entries": N, "imported": N, "already_present": N, "rejected": N,
                "failed": N, "duplicates": N},
     "results": {"results_key": "results/<manifest_id>/results.jsonl",
                 "errors_key": "results/<manifest_id>/errors.jsonl"}}

``results`` names the manifest's results files in ``bucket`` (:mod:`thingpress.results`).
They do not exist yet when the event is sent: the results writer, itself started by this
event (a rule of the stack on the same bus), writes them shortly after, once. The keys are
a function of the manifest id, so the event can name them; a consumer that needs the
files waits for the objects (or for ``results`` on the summary), a few seconds for a small
manifest and up to minutes for a million entries.

Sent at most once per manifest
------------------------------
Only the caller whose conditional update marked the summary COMPLETE
(:meth:`thingpress.audit.summaries.Summaries.try_complete`, run by the importer, the
provider and the watchdog) sends it, with the counts that update returned. The
same update sets ``completion_event`` to ``PENDING``; after PutEvents answers,
the summary says ``SENT`` (with ``completion_event_id``) or ``FAILED`` (with
``completion_event_error``). Nobody re-sends: not a redelivered message, not
the watchdog, because none of them can know whether a PutEvents whose answer was
lost (or whose function died right after it) reached the bus, and a second event
for one manifest is worse for a consumer than a missing one it can detect. So a
function dying between the update and PutEvents, or EventBridge refusing the
entry after the SDK's retries, loses the event; the summary then still says
``PENDING`` or ``FAILED``, which ``thingpress status MANIFEST --json`` shows
(``completion_event``, ``completion_event_error``) and a consumer can reconcile from. EventBridge itself delivers to targets at
least once: consumers dedupe on ``detail.manifest_id``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3

from thingpress.errors import ThingpressError
from thingpress.results.keys import results_keys

SOURCE = "thingpress"
MANIFEST_COMPLETED = "Manifest Completed"
#: the summary counters the event carries (they add up: see thingpress.audit).
COUNTS = ("entries", "imported", "already_present", "rejected", "failed", "duplicates")
#: ``completion_event`` on a summary: set with COMPLETE, then one of the other two.
PENDING, SENT, FAILED = "PENDING", "SENT", "FAILED"


class EventRefused(ThingpressError):
    """EventBridge answered PutEvents but did not accept the entry (``FailedEntryCount``)."""


def completion_detail(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The event's ``detail`` for a COMPLETE manifest summary (as stored)."""
    return {
        "manifest_id": summary["manifest_id"], "vendor": summary.get("vendor"),
        "environment": summary.get("environment"), "state": summary.get("state"),
        "bucket": summary.get("bucket"), "key": summary.get("key"), "version_id": summary.get("version_id"),
        "completed_at": summary.get("completed_at"),
        "counts": {name: int(summary.get(name, 0)) for name in COUNTS},
        "results": results_keys(summary["manifest_id"]),
    }


class CompletionEvents:
    """Puts the completion event on ``bus`` through an injected (or lazily created) EventBridge client."""

    def __init__(self, bus: str, client: Any = None):
        self.bus = bus
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("events")
        return self._client

    def publish(self, summary: Mapping[str, Any]) -> str:
        """Put one event for ``summary``; its EventBridge event id. Raises on refusal or error."""
        answer = self.client.put_events(Entries=[{
            "Source": SOURCE, "DetailType": MANIFEST_COMPLETED, "EventBusName": self.bus,
            "Detail": json.dumps(completion_detail(summary), separators=(",", ":")),
        }])
        entry = (answer.get("Entries") or [{}])[0]
        if answer.get("FailedEntryCount") or "EventId" not in entry:
            raise EventRefused(f"{entry.get('ErrorCode', 'no event id')}: {entry.get('ErrorMessage', '')}".strip())
        return str(entry["EventId"])


def announcer(bus: str) -> CompletionEvents | None:
    """The completion events of a function whose settings name ``bus``; None when none is configured."""
    return CompletionEvents(bus) if bus else None
