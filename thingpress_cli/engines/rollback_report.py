"""What a rollback (or teardown) did, or on a dry run would do, and how it is printed.

One job: the :class:`Report` the rollback engine (:mod:`.rollback`) fills in (counts per
action; what was kept and why) and :func:`print_report`, the text or JSON the
``rollback`` and ``teardown`` commands print.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Report:
    """What a rollback did (or, dry, would do): counts per action, and what was kept and why."""

    applied: bool
    mode: str
    manifests: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    kept: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"applied": self.applied, "mode": self.mode, "manifests": self.manifests,
                "counts": dict(sorted(self.counts.items())), "kept": self.kept}


def print_report(report: Report, as_json: bool, title: str, extra: dict[str, Any] | None = None) -> None:
    data = {**report.as_dict(), **(extra or {})}
    if as_json:
        sys.stdout.write(json.dumps(data, sort_keys=True) + "\n")
        return
    verb = "done" if report.applied else "would be done (dry run: --yes applies)"
    lines = [f"{title}: {len(report.manifests)} manifest(s), mode {report.mode}; {verb}:"]
    lines += [f"  {name:28} {count}" for name, count in sorted(report.counts.items())] or ["  nothing"]
    for name, count in sorted((extra or {}).get("stack", {}).items()):
        lines.append(f"  {name:28} {count}")
    for kept in report.kept[:20]:
        lines.append(f"  kept {kept['kind']} {kept['name']}: {kept['reason']}")
    if len(report.kept) > 20:
        lines.append(f"  ... and {len(report.kept) - 20} more kept")
    sys.stdout.write("\n".join(lines) + "\n")
