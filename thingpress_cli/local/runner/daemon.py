"""The runner as a daemon: ``python -m thingpress_cli.local.runner``, started and stopped by ``thingpress local``.

:func:`start_daemon` launches it detached and records its pid and start time in the
state file (:mod:`thingpress_cli.local.supervision`: a reused pid is never taken for
it); :func:`stop_daemon` stops it and, should any outlive it, its workers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from thingpress_cli.local import state, supervision
from thingpress_cli.local.runner.code import CODE_DIR
from thingpress_cli.local.runner.schedules import SCHEDULE_SECONDS_SETTING
from thingpress_cli.local.runner.sqs_source import POLL_WAIT_SECONDS
from thingpress_cli.local.runner.supervisor import Runner

#: What ``python -m`` runs (the package's ``__main__``: :func:`main`); the mark of its process.
RUNNER_MODULE = "thingpress_cli.local.runner"


def start_daemon(endpoint: str, path: Path = state.STATE_FILE, verbose: bool = False) -> int:
    """Start the runner detached (recorded in the state file); reuse a running one."""
    recorded = state.load(path).get("runner") or {}
    if (supervision.alive(recorded.get("pid"), RUNNER_MODULE, recorded.get("create_time"))
            and recorded.get("endpoint") == endpoint):
        return int(recorded["pid"])
    stop_daemon(path)
    log_dir = path.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", RUNNER_MODULE, "--endpoint", endpoint, "--log-dir", str(log_dir),
               "--cache-dir", str(path.parent / "code")]
    if verbose:
        command.append("--verbose")
    with (log_dir / "runner.out").open("ab") as sink:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    state.update("runner", {**supervision.record(process.pid), "endpoint": endpoint}, path)
    return process.pid


def stop_daemon(path: Path = state.STATE_FILE) -> bool:
    """Stop the recorded runner and its workers; True if one was running."""
    recorded = state.load(path).get("runner") or {}
    pid, created = recorded.get("pid"), recorded.get("create_time")
    alive = supervision.alive(pid, RUNNER_MODULE, created)
    if alive:
        supervision.terminate(pid, timeout=POLL_WAIT_SECONDS + 5, created=created, children=True)
    state.update("runner", None, path)
    return alive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {RUNNER_MODULE}", description="Run deployed Lambdas on their SQS mappings.")
    parser.add_argument("--endpoint", default=None, help="emulator URL (default: from build/local/state.json)")
    parser.add_argument("--log-dir", type=Path, default=state.LOG_DIR)
    parser.add_argument("--cache-dir", type=Path, default=CODE_DIR)
    parser.add_argument("--verbose", action="store_true", help="also print errors and tracebacks to stderr")
    parser.add_argument("--schedule-seconds", type=float, default=None,
                        help=f"run every scheduled function this often (default: ${SCHEDULE_SECONDS_SETTING}, "
                             "else each rule's own rate)")
    args = parser.parse_args(argv)
    endpoint = args.endpoint or state.endpoint()
    if not endpoint:
        raise SystemExit("no emulator endpoint: run `thingpress local up` first or pass --endpoint")
    schedule_seconds = args.schedule_seconds or float(os.environ.get(SCHEDULE_SECONDS_SETTING) or 0) or None
    runner = Runner(endpoint, cache_dir=args.cache_dir, log_dir=args.log_dir, verbose=args.verbose,
                    schedule_seconds=schedule_seconds)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    runner.report(f"runner started against {endpoint}")
    with contextlib.suppress(KeyboardInterrupt):
        runner.run()
    runner.report("runner stopped")
    return 0

