"""``thingpress local up --env A --env B``: one emulator, the environments' deploys at the same time.

The deploys are faked (``deploy_log.run``) with a barrier that only opens when both
are inside it at once: run one after the other, the first would time out there.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from thingpress_cli.commands import local as local_cmd
from thingpress_cli.core import interrupts, toolchain
from thingpress_cli.local import deploy_log, deployments, recorder, state
from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.local.runner import daemon as runner
from thingpress_cli.local.runner.schedules import SCHEDULE_SECONDS_SETTING


@pytest.fixture
def local_dir(tmp_path, monkeypatch):
    """The commands' state, outputs and synth folders under tmp_path; no emulator, runner or terraform."""
    monkeypatch.setattr(state, "STATE_FILE", tmp_path / "state.json")
    monkeypatch.setattr(state, "LOCAL_DIR", tmp_path)
    monkeypatch.setattr(state, "LOG_DIR", tmp_path / "logs")
    monkeypatch.setattr(deployments, "REPO", tmp_path)
    monkeypatch.setattr(deployments, "OUTPUTS", tmp_path / "terraform-outputs.json")
    monkeypatch.setattr(local_cmd, "PORT_FILE", tmp_path / "port")
    monkeypatch.setattr(deployments, "synth_root", lambda env: tmp_path / f"cdktf.out.{env}")
    fake = emulator.Emulator(pid=1, host="127.0.0.1", port=4566)
    monkeypatch.setattr(emulator, "running", lambda *a, **k: fake)
    monkeypatch.setattr(emulator, "start", lambda *a, **k: fake)
    monkeypatch.setattr(emulator, "refused_creates_report", lambda url: [])  # no lost create (lost_creates.Watch)
    monkeypatch.setattr(runner, "start_daemon", lambda *a, **k: 42)
    monkeypatch.setattr(toolchain, "warm_plugin_cache", lambda *a, **k: None)
    monkeypatch.setattr(deployments, "synth_fingerprint", lambda *a, **k: "fingerprint")
    return tmp_path


def _up(*envs: str) -> int:
    return local_cmd.cmd_up(argparse.Namespace(quotas=None, synth=False, no_runner=False, verbose=False,
                                              env=list(envs)))


def test_two_environments_deploy_at_the_same_time(local_dir, monkeypatch):
    both_inside = threading.Barrier(2, timeout=10)
    labels = []

    def deploy(command, *, cwd, env, log_path, label=""):
        labels.append(label)
        both_inside.wait()  # raises BrokenBarrierError unless the other deploy runs meanwhile
        stack = command[command.index("deploy") + 1]
        outputs = Path(command[command.index("--outputs-file") + 1])
        outputs.write_text(json.dumps({stack: {"target": "local", "env": env["THINGPRESS_ENV"]}}))
        return 0

    monkeypatch.setattr(deploy_log, "run", deploy)

    assert _up("local", "pr7") == 0

    assert sorted(labels) == ["local", "pr7"]  # several at once: each progress line says whose it is
    written = json.loads((local_dir / "terraform-outputs.json").read_text())
    assert written == {"thingpress-local": {"target": "local", "env": "local"},
                       "thingpress-pr7": {"target": "local", "env": "pr7"}}
    assert sorted(state.load()["deploys"]) == ["local", "pr7"]


def test_a_failed_deploy_fails_up_and_keeps_the_other_environment(local_dir, monkeypatch):
    def deploy(command, *, cwd, env, log_path, label=""):
        stack = command[command.index("deploy") + 1]
        if stack == "thingpress-pr7":
            return 1
        Path(command[command.index("--outputs-file") + 1]).write_text(json.dumps({stack: {"target": "local"}}))
        return 0

    monkeypatch.setattr(deploy_log, "run", deploy)

    assert _up("local", "pr7") == 1

    assert deployments.deployed("local") and not deployments.deployed("pr7")


def test_the_local_clouds_own_settings_do_not_force_a_synthesis():
    base = {"THINGPRESS_ENV": "local"}
    fingerprint = deployments.synth_fingerprint("http://127.0.0.1:4566", base)

    assert deployments.synth_fingerprint("http://127.0.0.1:4566", {**base, SCHEDULE_SECONDS_SETTING: "5"}) \
        == fingerprint  # the runner's schedule (the test session sets it) never reaches the stack
    assert deployments.synth_fingerprint("http://127.0.0.1:4566", {**base, recorder.SWITCH_ENV: "0"}) \
        == fingerprint  # nor does the runner's call recorder (make bench turns it off)
    assert deployments.synth_fingerprint("http://127.0.0.1:4566", {**base, "THINGPRESS_TAGS": '{"a": "b"}'}) \
        != fingerprint
    assert deployments.synth_fingerprint("http://127.0.0.1:4567", base) != fingerprint


# the provider's last lines when the emulator's answer to a CreateFunction was lost (deploy.log, 2026-12-07)
LOST_ANSWER_LOG = """\
thingpress-local  aws_lambda_function.provider_infineon_function_954264F5 (provider_infineon/function): Still creating... [4m50s elapsed]
thingpress-local  Error: creating Lambda Function (thingpress-local-provider-infineon): operation error Lambda: CreateFunction, https response error StatusCode: 409, RequestID: wfxGmusabAzyf1Gv9iOTaWE8d7voLlfiMSuYkvlDzvfZOI5ml18q, ResourceConflictException: Function already exist: thingpress-local-provider-infineon
"""


def _failing_once(log_text: str) -> tuple[list[int], Callable[..., int]]:
    """A fake ``deploy_log.run`` whose first deploy fails with ``log_text`` and whose next succeeds; its runs."""
    runs: list[int] = []

    def deploy(command, *, cwd, env, log_path, label=""):
        runs.append(1)
        if len(runs) == 1:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text(log_text)
            return 1
        log_path.write_text("Apply complete!\n")
        stack = command[command.index("deploy") + 1]
        Path(command[command.index("--outputs-file") + 1]).write_text(json.dumps({stack: {"target": "local"}}))
        return 0

    return runs, deploy


def test_a_function_whose_create_answer_was_lost_is_deleted_and_the_deploy_runs_again(local_dir, monkeypatch, capsys):
    from thingpress_cli.local import lost_creates

    forgotten = []
    runs, deploy = _failing_once(LOST_ANSWER_LOG)
    monkeypatch.setattr(deploy_log, "run", deploy)
    monkeypatch.setattr(lost_creates, "forget", lambda url, names: forgotten.append((url, names)))

    assert _up("local") == 0

    assert len(runs) == 2 and forgotten == [("http://127.0.0.1:4566", ["thingpress-local-provider-infineon"])]
    assert deployments.deployed("local")
    assert (local_dir / "logs" / "deploy.lost-answer.log").read_text() == LOST_ANSWER_LOG
    assert "the emulator created thingpress-local-provider-infineon but Terraform never got the answer" in \
        capsys.readouterr().err


# the provider's last line when the answer to a CreateEventSourceMapping was lost and its resend refused (the
# refusal as Lambda words it, thingpress_cli.local.emulator.awslambda); one line, as Terraform prints it
LOST_MAPPING_LOG = (
    "thingpress-pr7  Error: creating Lambda Event Source Mapping (arn:aws:sqs:us-east-1:123456789012:thingpress-pr7-"
    "lifecycle): operation error Lambda: CreateEventSourceMapping, https response error StatusCode: 409, RequestID: "
    "UBHo2LC0HJCYGVxLyhWI6rJLOOL1eZrFsXC3GOLQMeUyfOzUdBk1, ResourceConflictException: An event source mapping with "
    'SQS arn (" arn:aws:sqs:us-east-1:123456789012:thingpress-pr7-lifecycle ") and function (" thingpress-pr7-'
    'lifecycle ") already exists. Please update or delete the existing mapping with UUID '
    "44d0aa45-8811-445c-bc53-19ff7af7e4b5\n"
    # another stack's function: not this deploy's to delete
    'ResourceConflictException: An event source mapping with SQS arn (" arn:aws:sqs:us-east-1:123456789012:q ") '
    'and function (" someone-else ") already exists. Please update or delete the existing mapping with UUID '
    "00000000-0000-4000-8000-000000000000\n")


def test_a_mapping_whose_create_answer_was_lost_is_deleted_and_the_deploy_runs_again(local_dir, monkeypatch, capsys):
    from thingpress_cli.local import lost_creates

    forgotten = []
    runs, deploy = _failing_once(LOST_MAPPING_LOG)
    monkeypatch.setattr(deploy_log, "run", deploy)
    monkeypatch.setattr(lost_creates, "forget", lambda url, names: forgotten.append(("functions", names)))
    monkeypatch.setattr(lost_creates, "forget_mappings", lambda url, uuids: forgotten.append(("mappings", uuids)))

    assert _up("pr7") == 0

    assert len(runs) == 2
    assert forgotten == [("functions", []), ("mappings", ["44d0aa45-8811-445c-bc53-19ff7af7e4b5"])]
    assert "the emulator created event source mapping 44d0aa45-8811-445c-bc53-19ff7af7e4b5 but Terraform never " \
           "got the answer" in capsys.readouterr().err


def test_an_interrupted_deploy_is_not_run_again_and_says_the_state_was_saved(local_dir, monkeypatch, capsys):
    """A Ctrl-C during the deploy (the signal handler ``local up`` installs forwards it to Terraform): even a log
    that names a lost create is not retried, and the operator reads that Terraform kept its state."""
    runs = []

    def deploy(command, *, cwd, env, log_path, label=""):
        runs.append(1)
        os.kill(os.getpid(), signal.SIGINT)  # the operator's Ctrl-C, while cdktf runs
        deadline = time.monotonic() + 10  # the main thread runs the handler; Terraform takes longer to stop
        while not interrupts.received() and time.monotonic() < deadline:
            time.sleep(0.01)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(LOST_ANSWER_LOG)
        return 1

    monkeypatch.setattr(deploy_log, "run", deploy)

    assert _up("local") == 1 and len(runs) == 1
    err = capsys.readouterr().err
    assert "interrupted: Terraform stops gracefully and saves its state" in err
    assert "cdktf deploy of thingpress-local interrupted after 0 s: Terraform stopped and saved its state " \
           "(build/state/thingpress-local.tfstate); `thingpress local up` goes on from there" in err
    assert not deployments.deployed("local")


def test_an_empty_state_file_stops_the_deploy_with_the_way_out(local_dir, monkeypatch, capsys):
    """Terraform killed while it wrote its local state leaves it empty: planning against it would create every
    resource again over the emulator's, so the deploy does not start."""
    runs = []
    monkeypatch.setattr(deploy_log, "run", lambda *a, **k: runs.append(1) or 0)
    deployments.tf_state("local").parent.mkdir(parents=True, exist_ok=True)
    deployments.tf_state("local").write_text("")

    assert _up("local") == 1 and runs == []
    assert "cdktf deploy of thingpress-local not started: build/state/thingpress-local.tfstate is empty (a deploy " \
           "was killed while Terraform wrote it)" in capsys.readouterr().err


def test_any_other_failed_deploy_is_not_run_again(local_dir, monkeypatch):
    runs = []

    def deploy(command, *, cwd, env, log_path, label=""):
        runs.append(1)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("Error: creating SQS Queue: AccessDenied\n")
        return 1

    monkeypatch.setattr(deploy_log, "run", deploy)

    assert _up("local") == 1 and len(runs) == 1


def test_lost_functions_are_read_from_the_log_each_once():
    from thingpress_cli.local.lost_creates import lost_functions

    assert lost_functions(LOST_ANSWER_LOG * 2 + "Function already exist: not-a-conflict\n") == [
        "thingpress-local-provider-infineon"]
