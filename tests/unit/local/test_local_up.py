"""``thingpress local up --env A --env B``: one emulator, the environments' deploys at the same time.

The deploys are faked (``deploy_log.run``) with a barrier that only opens when both
are inside it at once: run one after the other, the first would time out there.
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import pytest

from thingpress_cli.commands import local as local_cmd
from thingpress_cli.core import toolchain
from thingpress_cli.local import deploy_log, deployments, state
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
    assert deployments.synth_fingerprint("http://127.0.0.1:4566", {**base, "THINGPRESS_TAGS": '{"a": "b"}'}) \
        != fingerprint
    assert deployments.synth_fingerprint("http://127.0.0.1:4567", base) != fingerprint
