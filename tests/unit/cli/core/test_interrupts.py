"""Ctrl-C during a cdktf run goes to Terraform, never to cdktf (thingpress_cli.core.interrupts).

The stand-ins behave as measured: the cdktf CLI answers SIGINT by killing Terraform at once (it left the
state file empty); Terraform answers its first SIGINT by saving its state and exiting 1.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from thingpress_cli.core import interrupts
from thingpress_cli.local import deploy_log

TERRAFORM = r"""
import signal, sys, time
from pathlib import Path
work = Path(sys.argv[1])
def graceful(signum, frame):
    (work / "terraform-interrupted").write_text("graceful")
    time.sleep(0.3)  # saving its state
    (work / "state").write_text("saved")
    sys.exit(1)
signal.signal(signal.SIGINT, graceful)
(work / "state").write_text("")  # writing its state: killed now, it stays empty
(work / "terraform-ready").write_text("up")
print("terraform: applying", flush=True)
time.sleep(60)
"""

CDKTF = r"""
import signal, subprocess, sys
from pathlib import Path
work = Path(sys.argv[1])
terraform = subprocess.Popen([sys.executable, "-c", sys.argv[2], str(work)])
def abort(signum, frame):  # cdktf 0.21: AbortError, Terraform killed
    (work / "cdktf-interrupted").write_text("AbortError")
    terraform.kill()
    sys.exit(1)
signal.signal(signal.SIGINT, abort)
sys.exit(terraform.wait())
"""


def _interrupt_when_terraform_runs(work: Path, seen: dict) -> threading.Thread:
    """A Ctrl-C to this process (only: pytest-xdist shares its process group) once the stand-in Terraform runs."""

    def interrupt() -> None:
        deadline = time.monotonic() + 30
        while not (work / "terraform-ready").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        (cdktf,) = [p for p in psutil.Process().children() if CDKTF.strip()[:20] in " ".join(p.cmdline())]
        seen["own_session"] = interrupts.own_session(cdktf.pid)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    return thread


def test_a_ctrl_c_stops_terraform_gracefully_and_leaves_cdktf_alone(tmp_path):
    seen: dict = {}
    before = signal.getsignal(signal.SIGINT)
    thread = _interrupt_when_terraform_runs(tmp_path, seen)

    with interrupts.to_terraform() as caught:
        code = deploy_log.run([sys.executable, "-c", CDKTF, str(tmp_path), TERRAFORM], cwd=tmp_path, env=dict(os.environ),
                              log_path=tmp_path / "deploy.log", out=open(os.devnull, "w"))
        assert interrupts.received() == 1
    thread.join(5)

    assert code == 1 and caught.count == 1
    assert (tmp_path / "terraform-interrupted").read_text() == "graceful"
    assert (tmp_path / "state").read_text() == "saved"  # cdktf's kill would have left it empty
    assert not (tmp_path / "cdktf-interrupted").exists()
    assert seen["own_session"]  # the terminal's Ctrl-C (to this process's group) does not reach cdktf
    assert signal.getsignal(signal.SIGINT) is before and interrupts.received() == 0


def test_outside_the_main_thread_nothing_changes():
    before = signal.getsignal(signal.SIGINT)
    found = {}

    def in_thread() -> None:
        with interrupts.to_terraform() as caught:
            found["handler"] = signal.getsignal(signal.SIGINT)
            found["caught"] = caught

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(5)

    assert found["handler"] is before and found["caught"].count == 0


@pytest.mark.parametrize("with_terraform", [True, False])
def test_before_terraform_starts_the_ctrl_c_goes_to_cdktf(tmp_path, with_terraform):
    """During synthesis nothing runs under cdktf yet, and nothing is written: cdktf itself is interrupted."""
    script = "import time; print('synthesizing', flush=True); time.sleep(60)"
    if with_terraform:
        script = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                  "time.sleep(60)")
    with interrupts.running([sys.executable, "-c", script], stderr=open(os.devnull, "w")) as process:
        try:
            deadline = time.monotonic() + 10
            while with_terraform and not psutil.Process(process.pid).children() and time.monotonic() < deadline:
                time.sleep(0.02)
            children = psutil.Process(process.pid).children()
            caught = interrupts.Interrupts()
            interrupts.forward(caught)
            if with_terraform:
                assert caught.sent_to == [c.pid for c in children] and process.pid not in caught.sent_to
                assert process.poll() is None  # cdktf runs on
            else:
                assert caught.sent_to == [process.pid]
                assert process.wait(5) != 0  # interrupted
        finally:
            if process.poll() is None:
                for child in psutil.Process(process.pid).children(recursive=True):
                    child.kill()
                process.kill()


def test_the_make_targets_wrapper_runs_the_command_in_its_own_session_and_returns_its_status(tmp_path):
    """``make deploy``/``destroy`` run cdktf through ``python -m thingpress_cli.core.interrupts``."""
    script = "import os, sys; open(sys.argv[1], 'w').write(str(os.getsid(0) == os.getpid())); raise SystemExit(3)"
    assert interrupts.main([sys.executable, "-c", script, str(tmp_path / "session")]) == 3
    assert (tmp_path / "session").read_text() == "True"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
