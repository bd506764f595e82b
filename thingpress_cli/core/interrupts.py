"""Ctrl-C during a ``cdktf deploy`` or ``destroy``: Terraform stops as it does alone, its state saved.

Measured here (``thingpress local up``, Ctrl-C 20 s into a ``terraform apply``): the terminal's SIGINT
reached the cdktf CLI, which answered ``AbortError: The operation was aborted`` and killed Terraform
within a second, while Terraform was writing its state. ``build/state/thingpress-local.tfstate`` was
left **empty** (0 bytes) with its lock file beside it: the next ``local up`` planned to create all 135
resources again over the ones the emulator holds. The same is reported upstream:

* hashicorp/terraform-cdk#3269: the state file is emptied when a ``cdktf destroy`` is cancelled;
* hashicorp/terraform#34266 (a maintainer): Terraform's first SIGINT is a *graceful* abort (it saves a
  state snapshot, asks the providers to stop, saves again after each operation, then exits with an
  error); only a second one is the urgent abort that can lose state, as the local state file is not
  written atomically;
* open-constructs/cdk-terrain#284, the fix in cdktf's maintained fork: the CLI lets Terraform shut
  down instead of killing it.

What thingpress does with cdktf 0.21: each cdktf run starts in a session of its own (:func:`running`), so
the terminal's Ctrl-C does not reach it; while :func:`to_terraform` is in force, a SIGINT thingpress
receives is sent on to what runs *under* each cdktf process (Terraform, and its providers, which leave
interrupts to Terraform), never to cdktf itself. A first Ctrl-C is then Terraform's graceful abort, a
second its urgent one, exactly as for Terraform run alone. Before Terraform starts (synthesis), the
Ctrl-C goes to cdktf: nothing is written then.

Used by ``thingpress local up`` and ``local destroy``, and (``python -m thingpress_cli.core.interrupts
COMMAND...``, :func:`main`) by ``make deploy`` and ``make destroy``, whose state is the AWS account's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil

from thingpress_cli.core.streams import warn

_LOCK = threading.Lock()
_RUNNING: set[subprocess.Popen] = set()


@contextlib.contextmanager
def running(command: list[str], **popen: Any) -> Iterator[subprocess.Popen]:
    """``subprocess.Popen(command, **popen)`` in a session of its own, known to :func:`to_terraform` while it runs."""
    with subprocess.Popen(command, start_new_session=True, **popen) as process:
        with _LOCK:
            _RUNNING.add(process)
        try:
            yield process
        finally:
            with _LOCK:
                _RUNNING.discard(process)


@dataclass
class Interrupts:
    """The Ctrl-Cs received while :func:`to_terraform` was in force."""

    count: int = 0
    sent_to: list[int] = field(default_factory=list)


_CURRENT: list[Interrupts] = []  # the one in force (:func:`to_terraform`), if any


def received() -> int:
    """The Ctrl-Cs received while :func:`to_terraform` is in force (0 outside it)."""
    return _CURRENT[0].count if _CURRENT else 0


def forward(interrupts: Interrupts) -> None:
    """Send SIGINT to what runs under each cdktf process (to the process itself while nothing does)."""
    interrupts.count += 1
    with _LOCK:
        processes = list(_RUNNING)
    for process in processes:
        try:
            targets = psutil.Process(process.pid).children(recursive=True) or [psutil.Process(process.pid)]
        except psutil.NoSuchProcess:
            continue
        for target in targets:
            with contextlib.suppress(psutil.NoSuchProcess):
                target.send_signal(signal.SIGINT)
                interrupts.sent_to.append(target.pid)
    if interrupts.count == 1:
        warn("interrupted: Terraform stops gracefully and saves its state (a second Ctrl-C is its urgent abort, "
             "which can lose state)")


@contextlib.contextmanager
def to_terraform() -> Iterator[Interrupts]:
    """While in force, a SIGINT to this process goes to the cdktf runs' Terraform.

    Python runs signal handlers in the main thread only: elsewhere (a command run from a thread) this changes
    nothing, and a Ctrl-C stays the main thread's KeyboardInterrupt, while the cdktf runs, in their own
    sessions, go on to their end.
    """
    interrupts = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield interrupts
        return
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: forward(interrupts))
    _CURRENT.append(interrupts)
    try:
        yield interrupts
    finally:
        _CURRENT.remove(interrupts)
        signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    """Run ``argv`` (a cdktf command) as :func:`running` does, Ctrl-C to its Terraform; its exit status."""
    command = list(sys.argv[1:] if argv is None else argv)
    if not command:
        raise SystemExit("usage: python -m thingpress_cli.core.interrupts COMMAND [ARG...]")
    with to_terraform(), running(command) as process:
        return process.wait()


def own_session(pid: int) -> bool:
    """Whether ``pid`` leads a session of its own (a terminal's Ctrl-C reaches this process's group only)."""
    return os.getsid(pid) == pid


if __name__ == "__main__":
    raise SystemExit(main())
