"""The runner: keeps one poller per event source in the emulator, and follows redeploys.

The mapping list, the schedules and each function's configuration are re-read every
:data:`REFRESH_SECONDS`; a changed code hash, layer or setting starts that source's
workers anew on the new code, a removed one stops them. The retired source's invocations in
hand end first, on their old workers (an update does not abort an invocation on AWS).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from thingpress_cli.local import state
from thingpress_cli.local.runner.cloud import Emulator
from thingpress_cli.local.runner.code import CODE_DIR, CodeCache
from thingpress_cli.local.runner.model import Stats
from thingpress_cli.local.runner.schedules import SchedulePoller
from thingpress_cli.local.runner.sqs_source import POLL_WAIT_SECONDS, MappingPoller

REFRESH_SECONDS = 2.0


class Runner:
    """Keeps one :class:`MappingPoller` per event source mapping and one
    :class:`SchedulePoller` per scheduled function target in the emulator."""

    def __init__(self, endpoint: str, region: str = state.REGION, cache_dir: Path = CODE_DIR,
                 log_dir: Path = state.LOG_DIR, verbose: bool = False, poll_wait: int = POLL_WAIT_SECONDS,
                 schedule_seconds: float | None = None) -> None:
        self.emulator = Emulator(endpoint, region)
        self.poll_wait = poll_wait
        self.schedule_seconds = schedule_seconds
        self.schedules: dict[str, SchedulePoller] = {}
        self.cache = CodeCache(cache_dir)
        self.log_dir = log_dir
        self.verbose = verbose
        self.stats = Stats()
        self.pollers: dict[str, MappingPoller] = {}
        #: pollers of changed or removed mappings and schedules whose invocations in hand have not ended yet.
        self.retired: list[MappingPoller | SchedulePoller] = []
        self._stop = threading.Event()
        self._log_lock = threading.Lock()

    def report(self, line: str) -> None:
        """A runner log line: to ``runner.log``, and to stderr when verbose."""
        stamped = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}"
        with self._log_lock:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with (self.log_dir / "runner.log").open("a") as sink:
                sink.write(stamped + "\n")
            if self.verbose:
                sys.stderr.write(stamped + "\n")

    def refresh(self) -> None:
        """Start pollers for new mappings, retire (then replace) changed ones, retire removed ones."""
        wanted = {m.uuid: m for m in self.emulator.mappings()}
        self.retired = [poller for poller in self.retired if not poller.done()]
        for key in list(self.pollers):
            if key not in wanted or wanted[key] != self.pollers[key].mapping:
                poller = self.pollers.pop(key)
                poller.retire()
                self.retired.append(poller)
                self.report(f"retired {poller.mapping.function.name} on {poller.mapping.queue_arn} (changed or "
                            "removed): its invocations in hand end first")
        for key, mapping in wanted.items():
            if key not in self.pollers:
                poller = MappingPoller(mapping, self.emulator, self.cache, self.log_dir, self.report, self.stats, self.poll_wait)
                self.pollers[key] = poller
                poller.start()
                self.report(f"polling {mapping.queue_arn} -> {mapping.function.name} (batch {mapping.batch_size}, "
                            f"concurrency {mapping.concurrency}, partial batch {mapping.report_batch_item_failures})")
        self.refresh_schedules()

    def refresh_schedules(self) -> None:
        """Start a poller for each new scheduled target, retire (then replace) changed ones, retire removed ones."""
        wanted = {s.key: s for s in self.emulator.schedules(self.report, self.schedule_seconds)}
        for key in list(self.schedules):
            if key not in wanted or wanted[key] != self.schedules[key].schedule:
                poller = self.schedules.pop(key)
                poller.retire()
                self.retired.append(poller)
                self.report(f"retired schedule {poller.schedule.rule_name} -> {poller.schedule.function.name}")
        for key, schedule in wanted.items():
            if key not in self.schedules:
                poller = SchedulePoller(schedule, self.emulator, self.cache, self.log_dir, self.report, self.stats)
                self.schedules[key] = poller
                poller.start()
                self.report(f"scheduled {schedule.rule_name} ({schedule.expression}, every {schedule.period:g} s) "
                            f"-> {schedule.function.name}")

    def run(self, refresh_seconds: float = REFRESH_SECONDS) -> None:
        """Refresh until :meth:`stop`."""
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as error:  # noqa: BLE001 - an emulator hiccup must not end the runner
                self.report(f"refresh failed: {type(error).__name__}: {error}")
            self._stop.wait(refresh_seconds)
        self._stop_all()

    def start(self, refresh_seconds: float = REFRESH_SECONDS) -> threading.Thread:
        """Run in a background thread (tests, benchmarks)."""
        thread = threading.Thread(target=self.run, args=(refresh_seconds,), name="runner", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop now (tests, benchmarks): every poller at once, then wait for them."""
        self._stop.set()
        self._stop_all()

    def _stop_all(self) -> None:
        """Every poller at once, then wait for them."""
        pollers: list[MappingPoller | SchedulePoller] = [*self.pollers.values(), *self.retired,
                                                         *self.schedules.values()]
        for poller in pollers:
            poller.stop(wait=False)
        for poller in pollers:
            poller.stop(wait=True)
