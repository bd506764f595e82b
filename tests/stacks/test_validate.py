"""``terraform validate`` on each synthesized stack, offline through the provider
mirror config (thingpress_cli.toolchain), in a temp folder (init -backend=false).

One ``terraform init`` serves both stacks (same provider); validate reads no
asset files, so only cdk.tf.json is copied.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from thingpress_cli import toolchain


@pytest.fixture(scope="module")
def workdir(synth, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH")
    work = tmp_path_factory.mktemp("validate")
    shutil.copy(synth.stack_dir("aws") / "cdk.tf.json", work / "cdk.tf.json")
    env = toolchain.environment()
    toolchain.warm_plugin_cache(env)  # a deploy may run terraform init at the same time (make test -n 2)
    init = subprocess.run(["terraform", "init", "-backend=false", "-input=false", "-no-color"], cwd=work, env=env,
                          capture_output=True, text=True, check=False, timeout=600)
    assert init.returncode == 0, init.stdout + init.stderr
    return work, env


@pytest.mark.parametrize("target", ["aws", "local"])
def test_terraform_validate(synth, workdir, target):
    work, env = workdir
    shutil.copy(synth.stack_dir(target) / "cdk.tf.json", work / "cdk.tf.json")
    done = subprocess.run(["terraform", "validate", "-json", "-no-color"], cwd=work, env=env, capture_output=True,
                          text=True, check=False, timeout=300)
    result = json.loads(done.stdout)
    problems = [f"{d['severity']}: {d['summary']} {d.get('detail', '')}" for d in result["diagnostics"]]
    assert result["valid"], problems
    assert not [p for p in problems if p.startswith("error")]
