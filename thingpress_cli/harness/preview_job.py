"""``make test-preview-job ENV=pr<N>``: the PR preview workflow's test steps, read from the workflow, run here.

The test steps are the ``run`` steps of job ``deploy`` in ``.github/workflows/pr-preview.yml``
after its deploy step (``id: deploy``), in order. Each runs as GitHub runs it (``bash -e``, in
the repository root) with the environment GitHub gives it: the workflow's ``env``, then the
job's, then the step's (``CI=true``, ``THINGPRESS_ENV=pr<N>``, ``THINGPRESS_DEPLOYMENT=remote``
...), their ``${{ }}`` expressions evaluated for pull request ``<N>`` on this machine
(:func:`contexts`). Nothing of the workflow is copied into the Makefile: a step added, a command
or a variable changed there is what runs here.

The deployment must already be up (``thingpress local up --env pr7``); nothing local is started
or looked at: with ``THINGPRESS_DEPLOYMENT=remote`` the tests use it through its outputs only,
as the workflow uses the AWS preview. ``uses`` steps (GitHub actions) are not run, and are named.

The steps get the caller's environment (``PATH``, ``PYTHONPATH`` ...) without what a fresh runner
does not have: the caller's ``THINGPRESS_*`` settings (but :data:`MACHINE_SETTINGS`, where this
machine keeps what the workflow fetches or installs) and ``PYTEST_*``; the workflow's on top.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.errors import DeploymentError
from thingpress_cli.core.toolchain import REPO

WORKFLOW = REPO / ".github" / "workflows" / "pr-preview.yml"
JOB = "deploy"
#: the test steps are the run steps after the step with this id.
DEPLOY_STEP = "deploy"
#: Caller settings kept: where this machine has what the workflow's earlier steps fetch or install
#: (the vendor samples of .ci/fetch-vendor-samples; the Terraform providers of setup-terraform).
MACHINE_SETTINGS = ("THINGPRESS_VENDOR_SAMPLES", "THINGPRESS_PROVIDER_MIRROR")
#: Step conditions understood here (GitHub's status functions; no condition is ``success()``).
CONDITIONS = ("", "success()", "always()", "failure()")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
PREVIEW_ENV = re.compile(r"pr([1-9][0-9]*)")


class PreviewJobError(Exception):
    """The workflow holds something this runner cannot reproduce, or the deployment is not there."""


@dataclass(frozen=True)
class Step:
    name: str
    run: str
    #: the step's whole environment as GitHub gives it (workflow, job and step env, evaluated).
    env: dict[str, str]
    condition: str = ""


def load_workflow(path: Path = WORKFLOW) -> dict[str, Any]:
    import yaml  # PyYAML: a moto[server] dependency (dev only)

    return yaml.safe_load(path.read_text())


def pull_request(env_name: str) -> int:
    """The pull request number of preview environment ``pr<N>``."""
    found = PREVIEW_ENV.fullmatch(env_name)
    if not found:
        raise PreviewJobError(f"ENV={env_name}: the preview job's environment is pr<N> "
                              "(THINGPRESS_ENV: pr${{ github.event.pull_request.number }}), e.g. ENV=pr7")
    return int(found.group(1))


def contexts(number: int, region: str) -> dict[str, str]:
    """The expressions the workflow's env may use, as they evaluate here for pull request ``number``.

    ``vars.*`` are the repository variables: the region is the deployment's own; the local
    deployment keeps its Terraform state in ``build/state``, so there is no state bucket
    (an unset variable is the empty string on GitHub too). Any other expression is refused."""
    return {
        "github.event.pull_request.number": str(number),
        "vars.AWS_REGION": region,
        "vars.THINGPRESS_STATE_BUCKET": "",
    }


def _text(value: Any) -> str:
    if isinstance(value, bool):  # YAML true/false: GitHub passes them as "true"/"false"
        return "true" if value else "false"
    return str(value)


def evaluate(text: str, known: Mapping[str, str], env: Mapping[str, str], where: str) -> str:
    """``text`` with every ``${{ expr }}`` replaced: a name of ``known`` or ``env.NAME``."""
    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression in known:
            return known[expression]
        if expression.startswith("env.") and expression[4:] in env:
            return env[expression[4:]]
        raise PreviewJobError(f"{where}: ${{{{ {expression} }}}} has no local value "
                              f"(thingpress_cli/harness/preview_job.py: contexts)")
    return EXPRESSION.sub(value, text)


def _env_block(block: Mapping[str, Any] | None, known: Mapping[str, str], env: dict[str, str],
               where: str) -> dict[str, str]:
    merged = dict(env)
    for key, raw in (block or {}).items():
        merged[str(key)] = evaluate(_text(raw), known, merged, f"{where} env {key}")
    return merged


def steps_after_deploy(workflow: Mapping[str, Any], env_name: str, region: str) -> tuple[list[Step], list[str]]:
    """The job's test steps with their environments, and the ``uses`` steps among them (not run here)."""
    known = contexts(pull_request(env_name), region)
    for scope, block in (("workflow", workflow), ("job", (workflow.get("jobs") or {}).get(JOB) or {})):
        if block.get("defaults"):
            raise PreviewJobError(f"{scope} defaults {block['defaults']!r}: not reproduced by preview_job")
    job = workflow["jobs"][JOB]
    env = _env_block(workflow.get("env"), known, {}, "workflow")
    env = _env_block(job.get("env"), known, env, f"job {JOB}")
    if env.get("THINGPRESS_ENV") != env_name:
        raise PreviewJobError(f"job {JOB} gives THINGPRESS_ENV={env.get('THINGPRESS_ENV')!r}, "
                              f"not {env_name!r}: the workflow names its environments otherwise")
    steps = job.get("steps") or []
    ids = [s.get("id") for s in steps]
    if DEPLOY_STEP not in ids:
        raise PreviewJobError(f"job {JOB} has no step with id {DEPLOY_STEP!r}: "
                              "the test steps are the run steps after it")
    found: list[Step] = []
    actions: list[str] = []
    for step in steps[ids.index(DEPLOY_STEP) + 1:]:
        name = step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0]
        if "uses" in step:
            actions.append(f"{name} (uses {step['uses']})")
            continue
        unsupported = sorted(set(step) - {"name", "id", "run", "env", "if"})
        if unsupported:
            raise PreviewJobError(f"step {name!r}: {', '.join(unsupported)} not reproduced by preview_job")
        condition = str(step.get("if", "")).strip()
        condition = EXPRESSION.fullmatch(condition).group(1) if EXPRESSION.fullmatch(condition) else condition
        if condition not in CONDITIONS:
            raise PreviewJobError(f"step {name!r}: condition {condition!r} not reproduced by preview_job "
                                  f"(understood: {', '.join(c for c in CONDITIONS if c)})")
        step_env = _env_block(step.get("env"), known, env, f"step {name!r}")
        found.append(Step(name=name, run=evaluate(step["run"], known, step_env, f"step {name!r} run"),
                          env=step_env, condition=condition))
    if not found:
        raise PreviewJobError(f"job {JOB} has no run step after its deploy step: nothing to test")
    return found, actions


def base_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment as a fresh runner would not have it: its own settings removed."""
    env = dict(os.environ if environ is None else environ)
    return {k: v for k, v in env.items()
            if not k.startswith("PYTEST_") and (not k.startswith("THINGPRESS_") or k in MACHINE_SETTINGS)}


def _runs(condition: str, failed: bool) -> bool:
    return {"always()": True, "failure()": failed}.get(condition, not failed)


def run(env_name: str, workflow_path: Path = WORKFLOW) -> int:
    try:
        deployment = Deployment.load(REPO / "terraform-outputs.json", env_name)
    except DeploymentError as exc:
        raise PreviewJobError(f"{exc}\n(deploy it first: thingpress local up --env {env_name})") from None
    steps, actions = steps_after_deploy(load_workflow(workflow_path), env_name, deployment.outputs.region)
    base = base_environment()
    rel = workflow_path.relative_to(REPO) if workflow_path.is_relative_to(REPO) else workflow_path
    print(f"preview job: the test steps of {rel} (job {JOB}) against {deployment.outputs.stack} "
          f"(target {deployment.outputs.target})", flush=True)
    failed = 0
    ran = []
    for step in steps:
        if not _runs(step.condition, bool(failed)):
            print(f"--- {step.name}: not run (if: {step.condition or 'success()'})", flush=True)
            continue
        shown = " ".join(f"{k}={v}" for k, v in sorted(step.env.items()) if k == "CI" or k.startswith("THINGPRESS_"))
        print(f"--- {step.name}\n    {shown}\n    $ {step.run.strip()}", flush=True)
        # GitHub's default shell on Linux: bash -e {0}
        code = subprocess.run(["bash", "-e", "-c", step.run], cwd=REPO, env={**base, **step.env},
                              check=False).returncode
        ran.append(f"{step.name}: exit {code}")
        failed = failed or code
    print(f"preview job: {'; '.join(ran)}"
          + (f"; not run here (GitHub actions): {'; '.join(actions)}" if actions else ""), flush=True)
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thingpress_cli.harness.preview_job",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True,
                        help="the preview environment, pr<N> (deployed: thingpress local up --env pr<N>)")
    args = parser.parse_args(argv)
    try:
        return run(args.env)
    except PreviewJobError as exc:
        print(f"preview job: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
