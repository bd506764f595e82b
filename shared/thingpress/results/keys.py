"""Where a manifest's results files are and what their lines hold (``thingpress.results``).

Nothing here imports the audit table: ``thingpress.events`` (which the audit table
imports) names the keys in the completion event, and the stack scopes its grants and its
lifecycle rule with ``RESULTS_PREFIX``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

RESULTS_PREFIX = "results/"
RESULTS_FILE = "results.jsonl"
ERRORS_FILE = "errors.jsonl"
#: every line's fields, in order (``thingpress report`` prints the same columns).
FIELDS = ("position", "thing_name", "fingerprint", "status", "reason", "certificate_id", "updated_at")
CONTENT_TYPE = "application/x-ndjson"


def results_keys(mid: str) -> dict[str, str]:
    """Where the results files of manifest ``mid`` are (known before they exist: the event carries them)."""
    return {"results_key": f"{RESULTS_PREFIX}{mid}/{RESULTS_FILE}", "errors_key": f"{RESULTS_PREFIX}{mid}/{ERRORS_FILE}"}


def noted_results(summary: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``results`` a summary notes (``AuditTable.note_results``), its counts as ints (DynamoDB
    gives a map's numbers as Decimal); None before the files are written."""
    noted = summary.get("results")
    if not noted:
        return None
    return {name: int(value) if name in ("lines", "errors") else value for name, value in noted.items()}


def result_line(row: Mapping[str, Any]) -> bytes:
    """One audit row as its results line (``FIELDS``, null where the row has none; newline-terminated)."""
    return (json.dumps({name: row.get(name) for name in FIELDS}, separators=(",", ":")) + "\n").encode()
