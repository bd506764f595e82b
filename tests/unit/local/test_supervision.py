"""Process supervision (thingpress_cli.local.supervision): a recorded process is known by its pid *and* start time."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from thingpress_cli.local import state, supervision
from thingpress_cli.local.runner import daemon

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)", "thingpress-sleeper"]


def started(process: subprocess.Popen) -> subprocess.Popen:
    """``process`` once its command line shows: right after ``Popen`` returns it can still read empty here."""
    deadline = time.monotonic() + 10
    while not psutil.Process(process.pid).cmdline() and time.monotonic() < deadline:
        time.sleep(0.01)
    return process


def test_a_recorded_process_is_alive_only_as_itself():
    process = started(subprocess.Popen(SLEEPER))
    try:
        recorded = supervision.record(process.pid)
        assert supervision.alive(process.pid, "thingpress-sleeper", recorded["create_time"])
        assert not supervision.alive(process.pid, "thingpress-other", recorded["create_time"])  # another program
        # the same pid, started at another time: a reused pid, not the recorded process
        assert not supervision.alive(process.pid, "thingpress-sleeper", recorded["create_time"] - 100)
        supervision.terminate(process.pid, timeout=5, created=recorded["create_time"] - 100)
        assert process.poll() is None  # not the recorded one: left alone
    finally:
        supervision.terminate(process.pid, timeout=5)
    assert process.poll() is not None
    assert not supervision.alive(process.pid, "thingpress-sleeper")


def test_terminate_takes_the_children_that_outlive_their_parent():
    # SIGTERM ends the parent and leaves its child running: the child goes too (SIGKILL), once the parent is gone
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time\n"
                               f"subprocess.Popen({SLEEPER!r})\n"
                               "print('up', flush=True)\n"
                               "time.sleep(60)\n"], stdout=subprocess.PIPE)
    assert parent.stdout is not None and parent.stdout.readline() == b"up\n"
    children = psutil.Process(parent.pid).children(recursive=True)
    assert len(children) == 1
    supervision.terminate(parent.pid, timeout=5, children=True)
    assert parent.wait(5) is not None
    psutil.wait_procs(children, timeout=5)
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)


def test_the_runner_daemon_is_recorded_with_its_start_time_and_stopped(tmp_path):
    path = tmp_path / "state.json"
    pid = daemon.start_daemon("http://127.0.0.1:9", path=path)  # no emulator there: the runner only reports
    try:
        recorded = state.load(path)["runner"]
        assert recorded["pid"] == pid and recorded["create_time"] == psutil.Process(pid).create_time()
        assert daemon.start_daemon("http://127.0.0.1:9", path=path) == pid  # reused
        assert state.pid_alive(pid, daemon.RUNNER_MODULE)  # what ``thingpress local status`` asks
    finally:
        assert daemon.stop_daemon(path)
    assert "runner" not in state.load(path)
    deadline = time.monotonic() + 5
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_process_is_recorded_once_its_command_line_shows(monkeypatch):
    """Right after Popen its command line can read empty: recorded then, ``alive`` with the marker said no
    and ``start_daemon`` started a second runner beside the first (seen in a fresh CI run)."""
    process = started(subprocess.Popen(SLEEPER))
    reads, real = [], psutil.Process.cmdline
    monkeypatch.setattr(psutil.Process, "cmdline", lambda self: [] if len(reads.append(1) or reads) <= 2 else real(self))
    try:
        recorded = supervision.record(process.pid)
        assert len(reads) == 3  # waited through the two empty reads
        assert supervision.alive(process.pid, "thingpress-sleeper", recorded["create_time"])
    finally:
        supervision.terminate(process.pid, timeout=5)
