"""Progress of manifests being imported: finished / total, current rate, time left.

:class:`Meter` turns successive summary rows of one manifest into figures: the
certificates finished (every terminal outcome plus duplicates, the same sum that
equals ``entries`` when the manifest is complete), the total (``entries`` once the
provider has finished parsing, unknown before), the current rate over the last
:data:`WINDOW` seconds and the time left at that rate.

:class:`Display` shows the meters: on a terminal, one rich progress line per
manifest that fits the terminal width (80 columns included); otherwise one plain
line per manifest every :data:`PLAIN_EVERY` seconds (and a last one when it ends),
so a CI log gets a readable trace instead of control characters.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from thingpress.audit.states import COMPLETE, REFUSED, STALLED

#: seconds of samples the current rate is measured over.
WINDOW = 10.0
#: seconds between plain lines when the output is not a terminal.
PLAIN_EVERY = 5.0
FINISHED_FIELDS = ("imported", "already_present", "rejected", "failed", "duplicates")


def short_id(mid: str) -> str:
    """``generated-1a2b3c4d``: vendor and the first 8 digest digits (commands accept any unique prefix)."""
    vendor, _, digest = mid.rpartition("-")
    return f"{vendor}-{digest[:8]}" if vendor else mid[:18]


def duration(seconds: float | None) -> str:
    """``42s``, ``3m07s``, ``1h02m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


@dataclass
class Meter:
    """Figures for one manifest from its successive summary rows."""

    mid: str
    clock: Callable[[], float] = time.monotonic
    row: dict[str, Any] | None = None
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def update(self, row: dict[str, Any] | None) -> None:
        self.row = row
        now = self.clock()
        self.samples.append((now, self.finished))
        while len(self.samples) > 2 and self.samples[1][0] <= now - WINDOW:
            self.samples.popleft()

    @property
    def state(self) -> str:
        return str(self.row.get("state", "")) if self.row else "WAITING"

    @property
    def done(self) -> bool:
        """Finished, or STALLED (the watchdog found nothing left to finish it): a waiting operator stops."""
        return self.state in (COMPLETE, REFUSED, STALLED)

    @property
    def finished(self) -> int:
        return sum(int(self.row.get(k, 0)) for k in FINISHED_FIELDS) if self.row else 0

    @property
    def total(self) -> int | None:
        if self.row and (self.row.get("parse_done") or self.done):
            return int(self.row.get("entries", 0))
        return None

    @property
    def rate(self) -> float | None:
        """Certificates per second over the window; None before two samples span any time."""
        if len(self.samples) < 2:
            return None
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    @property
    def left(self) -> float | None:
        """Seconds left at the current rate; 0 when done, None when unknown."""
        if self.done:
            return 0.0
        rate, total = self.rate, self.total
        if not rate or total is None:
            return None
        return max(0, total - self.finished) / rate

    def plain(self) -> str:
        total = "?" if self.total is None else str(self.total)
        rate = "-" if self.rate is None else f"{self.rate:.1f}/s"
        return (f"{short_id(self.mid)} {self.state} {self.finished}/{total} certificates, {rate}, "
                f"{duration(self.left)} left")


class Display:
    """Shows a set of meters: rich lines on a terminal, plain lines every few seconds otherwise."""

    def __init__(self, labels: dict[str, str], *, enabled: bool = True, console: Any = None,
                 clock: Callable[[], float] = time.monotonic, plain_out: TextIO | None = None):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.clock = clock
        self.labels = labels
        self.rich = enabled and self.console.is_terminal
        self.plain_out = plain_out
        self._last_plain: float | None = None
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> Display:
        if self.rich:
            from rich.progress import BarColumn, Progress, TextColumn
            from rich.table import Column

            # label (at most 24) + bar + "12345/12345" + rate + left: fits 80 columns, the bar shrinks.
            label = Column(no_wrap=True, overflow="ellipsis", max_width=24)
            self._progress = Progress(
                TextColumn("{task.description}", style="bold", table_column=label), BarColumn(bar_width=None),
                TextColumn("{task.fields[count]:>11}"), TextColumn("{task.fields[rate]:>8}"),
                TextColumn("{task.fields[left]:>11}"), console=self.console, expand=True)
            self._progress.start()
            for mid, label in self.labels.items():
                self._tasks[mid] = self._progress.add_task(label, total=None, count="", rate="", left="")
        return self

    def show(self, meters: dict[str, Meter], *, final: bool = False) -> None:
        if not self.enabled:
            return
        if self.rich:
            for mid, m in meters.items():
                total = m.total
                self._progress.update(
                    self._tasks[mid], completed=m.finished, total=total,
                    count=f"{m.finished}/{'?' if total is None else total}",
                    rate="-" if m.rate is None else f"{m.rate:.1f}/s",
                    left=m.state if m.done else f"{duration(m.left)} left")
            return
        now = self.clock()
        if final or self._last_plain is None or now - self._last_plain >= PLAIN_EVERY:
            self._last_plain = now
            out = self.plain_out
            for m in meters.values():
                if out is None:
                    self.console.print(m.plain(), markup=False, highlight=False, soft_wrap=True)
                else:
                    out.write(m.plain() + "\n")

    def renderable(self) -> Any:
        """What the terminal shows now (rich mode), e.g. to check it fits a width."""
        return self._progress.get_renderable()

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
