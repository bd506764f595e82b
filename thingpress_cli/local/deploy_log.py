"""A ``cdktf deploy`` run with compact progress: resources done of total, elapsed.

The full output (Terraform's plan and apply included) goes to a log file under
``build/local/logs``; the terminal gets one progress line (rich, on a terminal)
or a plain line every few seconds (otherwise). The total is Terraform's
``Plan: N to add, M to change, K to destroy`` and a resource is done when
Terraform prints ``Creation complete``, ``Modifications complete`` or
``Destruction complete`` for it. On failure the last lines of the log are shown
with its path. The command runs through :func:`thingpress_cli.core.interrupts.running`: a Ctrl-C goes to
Terraform, not to cdktf (which would kill Terraform while it writes its state).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from thingpress_cli.core import interrupts

_PLAN = re.compile(r"Plan: (\d+) to add, (\d+) to change, (\d+) to destroy")
_DONE = re.compile(r"(Creation|Modifications|Destruction) complete after")
_NO_CHANGES = re.compile(r"No changes\.")
#: seconds between plain progress lines when not on a terminal.
PLAIN_EVERY = 10.0
TAIL = 30


@dataclass
class DeployProgress:
    """Counts read from the deploy output, line by line."""

    total: int | None = None
    done: int = 0
    #: the environment, when several deploy at once (their lines then say whose they are)
    label: str = ""

    def feed(self, line: str) -> None:
        plan = _PLAN.search(line)
        if plan:
            self.total = sum(int(n) for n in plan.groups())
        elif _NO_CHANGES.search(line):
            self.total = self.total or 0
        elif _DONE.search(line):
            self.done += 1

    def text(self, elapsed: float) -> str:
        total = "?" if self.total is None else str(self.total)
        minutes, seconds = divmod(int(elapsed), 60)
        return f"deploy{' ' + self.label if self.label else ''}: {self.done}/{total} resources, " \
               f"{minutes}:{seconds:02d} elapsed"


def follow(lines: Iterable[str], log: TextIO, show: Callable[[DeployProgress], None],
           label: str = "") -> DeployProgress:
    """Write every line to ``log``, count it, and call ``show`` after each one."""
    progress = DeployProgress(label=label)
    for line in lines:
        log.write(line)
        progress.feed(line)
        show(progress)
    log.flush()
    return progress


def run(command: list[str], *, cwd: Path, env: dict[str, str], log_path: Path, out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic, label: str = "") -> int:
    """Run ``command`` with its output in ``log_path`` and compact progress on ``out`` (stdout).

    With a ``label`` (several deploys at once) progress comes as plain labelled lines,
    never as one rewritten terminal line the other deploys would overwrite.
    """
    out = out or sys.stdout
    log_path.parent.mkdir(parents=True, exist_ok=True)
    began = clock()
    terminal = out.isatty() and not label
    last: list[float] = [began]

    def show(progress: DeployProgress) -> None:
        now = clock()
        if terminal:
            out.write("\r" + progress.text(now - began).ljust(60))
            out.flush()
        elif now - last[0] >= PLAIN_EVERY:
            last[0] = now
            out.write(progress.text(now - began) + "\n")
            out.flush()

    with log_path.open("w") as log, interrupts.running(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace") as proc:
        assert proc.stdout is not None
        progress = follow(proc.stdout, log, show, label)
        code = proc.wait()
    out.write(("\r" if terminal else "") + progress.text(clock() - began).ljust(60 if terminal else 0).rstrip()
              + f" ({'done' if code == 0 else f'failed, exit {code}'}); full log: {log_path}\n")
    if code != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-TAIL:]
        out.write("".join(f"  | {line}\n" for line in tail))
    out.flush()
    return code
