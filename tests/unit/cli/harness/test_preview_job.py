"""``make test-preview-job``: the preview workflow's test steps, as read from the workflow itself.

The real workflow file is read here: the step ``make test-preview-job`` runs is the one the
workflow runs after its deploy, with the workflow's variables (and the remote setting the
tests read from ``thingpress_cli.core.deployment``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from thingpress_cli.core.deployment import ENV_DEPLOYMENT, REMOTE, treated_as_remote
from thingpress_cli.harness import preview_job
from thingpress_cli.harness.preview_job import PreviewJobError, base_environment, load_workflow, steps_after_deploy

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="module")
def workflow() -> dict:
    return load_workflow()


def test_the_preview_job_runs_the_integration_tests_as_remote_in_ci(workflow):
    steps, actions = steps_after_deploy(workflow, "pr7", "us-east-1")
    assert [(s.name, s.run.strip()) for s in steps] == [
        ("Integration tests against terraform-outputs.json", "make test-integration")]
    (step,) = steps
    assert {k: step.env[k] for k in ("CI", "THINGPRESS_ENV", ENV_DEPLOYMENT, "THINGPRESS_REGION")} == {
        "CI": "true", "THINGPRESS_ENV": "pr7", ENV_DEPLOYMENT: REMOTE, "THINGPRESS_REGION": "us-east-1"}
    assert treated_as_remote(step.env)  # the setting the tests read, with the value the workflow gives
    assert actions == ["Keep the outputs with the run (uses actions/upload-artifact@v4)"]


def test_the_test_steps_follow_the_step_that_runs_make_deploy(workflow):
    job = workflow["jobs"][preview_job.JOB]
    (deploy,) = [s for s in job["steps"] if s.get("id") == preview_job.DEPLOY_STEP]
    assert deploy["run"].startswith("make deploy ")


def test_the_make_target_runs_the_module_for_the_env_given():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ntest-preview-job:")[1].split("\n\n")[0]
    assert recipe.splitlines()[1:] == ["\t$(PY) -m thingpress_cli.harness.preview_job --env $(ENV)"]


def test_a_step_added_after_the_deploy_is_run_too_and_conditions_are_read(workflow):
    changed = copy.deepcopy(workflow)
    steps = changed["jobs"]["deploy"]["steps"]
    steps.append({"name": "Smoke", "if": "${{ always() }}", "env": {"EXTRA": "${{ env.THINGPRESS_ENV }}-x"},
                  "run": "echo ${{ github.event.pull_request.number }}"})
    got, _ = steps_after_deploy(changed, "pr12", "eu-west-1")
    assert [(s.name, s.run, s.condition) for s in got][-1] == ("Smoke", "echo 12", "always()")
    assert got[-1].env["EXTRA"] == "pr12-x" and got[-1].env["THINGPRESS_REGION"] == "eu-west-1"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda w: w["env"].update({"X": "${{ secrets.TOKEN }}"}), r"workflow env X: \$\{\{ secrets.TOKEN \}\} has no local"),
    (lambda w: w["jobs"]["deploy"]["steps"][-2].update({"if": "github.ref == 'main'"}), "condition .* not reproduced"),
    (lambda w: w["jobs"]["deploy"]["steps"][-2].update({"working-directory": "sub"}), "working-directory not reproduced"),
    (lambda w: [s.pop("id", None) for s in w["jobs"]["deploy"]["steps"]], "no step with id 'deploy'"),
    (lambda w: w["env"].update({"THINGPRESS_ENV": "preview-${{ github.event.pull_request.number }}"}),
     "gives THINGPRESS_ENV='preview-7', not 'pr7'"),
])
def test_what_cannot_be_reproduced_here_is_refused_by_name(workflow, edit, message):
    changed = copy.deepcopy(workflow)
    edit(changed)
    with pytest.raises(PreviewJobError, match=message):
        steps_after_deploy(changed, "pr7", "us-east-1")


@pytest.mark.parametrize("env_name", ["local", "dev", "pr", "pr07"])
def test_only_a_preview_environment_is_accepted(workflow, env_name):
    with pytest.raises(PreviewJobError, match=f"ENV={env_name}: the preview job's environment is pr<N>"):
        steps_after_deploy(workflow, env_name, "us-east-1")


def test_the_callers_own_settings_do_not_reach_the_steps():
    caller = {"PATH": "/bin", "PYTHONPATH": "/src", "THINGPRESS_ENV": "local", "THINGPRESS_OUTPUTS": "/x.json",
              "THINGPRESS_LOCAL_SCHEDULE_SECONDS": "5", "THINGPRESS_VENDOR_SAMPLES": "/samples",
              "PYTEST_XDIST_WORKER": "gw0", "PYTEST_ADDOPTS": "-k x"}
    assert base_environment(caller) == {"PATH": "/bin", "PYTHONPATH": "/src", "THINGPRESS_VENDOR_SAMPLES": "/samples"}
