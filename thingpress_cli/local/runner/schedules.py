"""The schedule event source: EventBridge ``rate(...)`` rules whose target is a function.

Every enabled EventBridge rule with a ``rate(...)`` schedule expression whose target
is a function (``ListRules``, ``ListTargetsByRule``) gets a :class:`SchedulePoller`:
one warm worker that invokes the function with EventBridge's scheduled-event payload
once per period (the first run one period after the rule is found, as EventBridge
does). ``THINGPRESS_LOCAL_SCHEDULE_SECONDS`` (or ``--schedule-seconds``) replaces every
period, so tests do not wait minutes. ``cron(...)`` rules are reported and not run.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thingpress.arns import Arn
from thingpress_cli.local.runner.code import CodeCache
from thingpress_cli.local.runner.model import ScheduleSpec, Stats
from thingpress_cli.local.runner.workers import Worker

if TYPE_CHECKING:
    from thingpress_cli.local.runner.cloud import Emulator

#: replaces the period of every schedule (seconds), for tests and demos.
SCHEDULE_SECONDS_SETTING = "THINGPRESS_LOCAL_SCHEDULE_SECONDS"
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_RATE_UNIT_SECONDS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def rate_seconds(expression: str) -> float | None:
    """The period of a ``rate(N unit)`` schedule expression in seconds; None for anything else (cron)."""
    match = _RATE.match(expression.strip())
    if not match or int(match.group(1)) < 1:
        return None
    return int(match.group(1)) * _RATE_UNIT_SECONDS[match.group(2)]


def scheduled_event(rule_arn: str, region: str, now: float | None = None) -> dict[str, Any]:
    """The event EventBridge passes to a scheduled rule's target."""
    account = Arn.parse(rule_arn).account
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": account, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "region": region,
        "resources": [rule_arn], "detail": {},
    }


class SchedulePoller:
    """Runs one scheduled function target every ``period`` seconds on its own warm worker."""

    def __init__(self, schedule: ScheduleSpec, emulator: Emulator, cache: CodeCache, log_dir: Path,
                 report: Callable[[str], None], stats: Stats) -> None:
        self.schedule = schedule
        self.emulator = emulator
        self.cache = cache
        self.log = log_dir / f"{schedule.function.name}.log"
        self.report = report
        self.stats = stats
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"schedule-{schedule.rule_name}", daemon=True)
        self._worker: Worker | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        """Stop now (the runner's shutdown): the worker killed, its run with it; ``wait``: first wait for
        the run in hand to end."""
        self._stop.set()
        if wait:
            self._thread.join(timeout=self.schedule.function.timeout + 5)
        if self._worker is not None:
            self._worker.stop()

    def retire(self) -> None:
        """No further run for a schedule or function that changed or went; the run in hand ends on its
        worker, which then stops (as :meth:`.MappingPoller.retire`)."""
        self._stop.set()

    def done(self) -> bool:
        """True once the schedule's thread has ended."""
        return not self._thread.is_alive()

    def _loop(self) -> None:
        spec = self.schedule.function
        while not self._stop.wait(self.schedule.period):
            try:
                if self._worker is None:
                    task_root, opt = self.cache.layout(spec)
                    self._worker = Worker(spec, task_root, opt, self.emulator.endpoint, self.emulator.region, self.log)
                outcome = self._worker.invoke(scheduled_event(self.schedule.rule_arn, self.emulator.region))
                self.runs += 1
                self.stats.add(invocations=1, failures=0 if outcome.ok else 1)
                if not outcome.ok and outcome.error is not None:
                    self.report(f"{spec.name}: scheduled run failed ({self.schedule.rule_name}): "
                                f"{json.dumps(outcome.error)}")
            except Exception as error:  # noqa: BLE001 - the schedule must outlive any one failure
                if not self._stop.is_set():
                    self.report(f"{spec.name}: schedule error: {type(error).__name__}: {error}")
        if self._worker is not None:
            self._worker.stop()
