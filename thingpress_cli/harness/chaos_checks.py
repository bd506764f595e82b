"""What ``make chaos`` counts once the imports settle (step 3 of :mod:`.chaos`).

One job: the verdict: whether every manifest completed, each certificate's audit rows and
IoT state (lost, duplicated, failed), and the most provider chains that worked on one
manifest at once, from the providers' logs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from thingpress.audit.states import COMPLETE, FAILED, REJECTED, STATUSES
from thingpress.audit.table import AuditTable
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.harness.chaos_result import Manifest, Result
from thingpress_cli.local import state


@dataclass
class LogMarks:
    """Where each provider's log ended when the run started (only later lines are read)."""

    offsets: dict[Path, int]

    @classmethod
    def now(cls, functions: list[str], log_dir: Path = state.LOG_DIR) -> LogMarks:
        paths = [log_dir / f"{name}.log" for name in functions]
        return cls({p: p.stat().st_size if p.exists() else 0 for p in paths})

    def lines(self) -> Iterator[dict[str, Any]]:
        """The JSON log lines written since (Powertools' structured lines; others skipped)."""
        for path, offset in self.offsets.items():
            if not path.exists():
                continue
            with path.open("rb") as log:
                log.seek(offset)
                for raw in log:
                    if raw.startswith(b"{"):
                        with contextlib.suppress(ValueError):
                            yield json.loads(raw)


def max_chains(lines: Iterator[dict[str, Any]], manifest_ids: set[str]) -> int:
    """The most provider invocations working on one manifest at once: each invocation's interval from
    "manifest taken" to "manifest let go" (its last line if it was killed), by request id."""
    spans: dict[tuple[str, str], list[datetime]] = {}
    for line in lines:
        mid, request = line.get("manifest_id"), line.get("function_request_id")
        if mid not in manifest_ids or not request:
            continue
        stamp = datetime.strptime(line["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z")
        key = (mid, request)
        if line.get("message") == "manifest taken":
            spans[key] = [stamp, stamp]
        elif key in spans:
            spans[key][1] = stamp
    most = 0
    for mid in manifest_ids:
        events = sorted((t, step) for (m, _), (start, end) in spans.items() if m == mid
                        for t, step in ((start, 1), (end, -1)))
        running = 0
        for _, step in events:
            running += step
            most = max(most, running)
    return most


def complete(table: AuditTable, manifests: list[Manifest]) -> bool:
    return all((row := table.get_summary(m.manifest_id)) and row["state"] == COMPLETE for m in manifests)


def check(deployment: Deployment, manifest: Manifest, result: Result) -> None:
    """Add this manifest's lost, duplicated and failed certificates to ``result``."""
    table = deployment.audit_table()
    rows = [r for r in table.entries(manifest.manifest_id) if r["sk"].startswith("C#")]
    by_fingerprint: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_fingerprint.setdefault(row["fingerprint"], []).append(row)
    result.duplicated += sum(len(found) - 1 for found in by_fingerprint.values() if len(found) > 1)
    result.failed += sum(1 for row in rows if row["status"] in (FAILED, REJECTED))
    summary = table.get_summary(manifest.manifest_id) or {}
    counted = sum(int(summary.get(k) or 0) for k in ("imported", "already_present", "rejected", "failed"))
    result.duplicated += max(0, counted - len(manifest.expected))
    iot = deployment.client("iot")

    def in_iot(fingerprint: str, thing_name: str) -> tuple[bool, int]:
        try:
            described = iot.describe_certificate(certificateId=fingerprint)["certificateDescription"]
            principals = iot.list_thing_principals(thingName=thing_name)["principals"]
        except (iot.exceptions.ResourceNotFoundException, iot.exceptions.InvalidRequestException):
            return False, 0
        return described["status"] == "ACTIVE" and described["certificateArn"] in principals, len(principals)

    with ThreadPoolExecutor(8) as pool:
        found = dict(zip(manifest.expected, pool.map(lambda item: in_iot(*item), manifest.expected.items())))
    for fingerprint in manifest.expected:
        present, principals = found[fingerprint]
        terminal = any(r["status"] in STATUSES for r in by_fingerprint.get(fingerprint, []))
        if not (present and terminal):
            result.lost += 1
            result.notes.append(f"lost {manifest.expected[fingerprint]} ({fingerprint[:12]}): "
                                f"audit row {'yes' if terminal else 'no'}, in IoT {'yes' if present else 'no'}")
        result.duplicated += max(0, principals - 1)
