"""Process supervision for the local cloud, through ``psutil``: is a recorded process still ours, stop it, find workers.

The state file records a process as its pid *and* its start time
(:func:`record`): a pid alone can be reused by an unrelated process after the
recorded one ended, and a check by pid (or by a command line that happens to
match) would then take the stranger for the emulator or the runner, or stop it.
:func:`alive` answers for the recorded process only (same pid, same
``create_time``, not a zombie, the command line holding the module it runs);
:func:`terminate` stops it (SIGTERM, then SIGKILL after a timeout,
``psutil.wait_procs``), with its children if asked; :func:`pids_with_environment`
finds the runner's workers by their Lambda environment.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import psutil


#: How long :func:`record` waits for a just-started process's command line to show.
EXEC_WAIT_SECONDS = 10.0


def record(pid: int) -> dict[str, Any]:
    """What the state file keeps of a process it started: its pid and start time, once its command line
    shows. Right after ``Popen`` returns, ``/proc/<pid>/cmdline`` can still read empty here, and
    :func:`alive` with a marker then takes the process for another program: a fresh CI run started a
    second runner beside the one it had just recorded (test_supervision)."""
    process = psutil.Process(pid)
    deadline = time.monotonic() + EXEC_WAIT_SECONDS
    try:
        while not process.cmdline() and time.monotonic() < deadline:
            time.sleep(0.01)
    except psutil.Error:
        pass  # gone already: its pid and start time are still what was started
    return {"pid": pid, "create_time": process.create_time()}


def _process(pid: int | None, created: float | None = None) -> psutil.Process | None:
    """The process ``pid`` if it runs (and, with ``created``, is the one started then), else None."""
    if not pid:
        return None
    try:
        process = psutil.Process(pid)
        if created is not None and process.create_time() != created:
            return None  # the pid now belongs to another process
        if process.status() == psutil.STATUS_ZOMBIE:
            return None  # a zombie is not running
    except psutil.NoSuchProcess:
        return None
    return process


def alive(pid: int | None, marker: str | None = None, created: float | None = None) -> bool:
    """Whether process ``pid`` runs (started at ``created``, if given; its command line holding ``marker``, if given)."""
    try:
        process = _process(pid, created)
        if process is None:
            return False
        return marker is None or marker in " ".join(process.cmdline())
    except psutil.AccessDenied:
        return True  # someone else's process: it runs, and it is not ours to inspect
    except psutil.NoSuchProcess:
        return False


def terminate(pid: int, timeout: float = 10.0, created: float | None = None, children: bool = False) -> None:
    """SIGTERM ``pid`` (only the process started at ``created``, if given), then SIGKILL after ``timeout`` seconds.

    ``children``: its descendants too, once it is gone (a worker whose parent was
    killed before it could stop it is left running otherwise).
    """
    try:
        process = _process(pid, created)
        if process is None:
            return
        descendants = process.children(recursive=True) if children else []
        process.terminate()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return
    _, left = psutil.wait_procs([process], timeout=timeout)  # reaps it if it is our child
    _kill(left)
    _kill([child for child in descendants if child.is_running()])


def _kill(processes: Iterable[psutil.Process]) -> None:
    processes = list(processes)
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=5)


def pids_with_environment(wanted: Mapping[str, str]) -> list[int]:
    """The processes (of this user: others' environments are not readable) whose environment holds every ``wanted`` pair."""
    pids = []
    for process in psutil.process_iter():
        try:
            environ = process.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
        if all(environ.get(key) == value for key, value in wanted.items()):
            pids.append(process.pid)
    return sorted(pids)
