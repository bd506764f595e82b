"""Remote or local: ``THINGPRESS_DEPLOYMENT`` and what a ``local_only`` test does with it.

The preview workflow's test step sets ``THINGPRESS_DEPLOYMENT=remote`` (so does
``make test-preview-job``, which runs that step): local-only tests skip there with
their reason, CI or not. A local run missing a prerequisite fails in CI.
"""

from __future__ import annotations

import pytest
from deployment_checks import local_only_outcome

from thingpress_cli.core.deployment import ENV_DEPLOYMENT, treated_as_remote
from thingpress_cli.core.errors import DeploymentError

REASON = "edits the audit table by hand: local deployments only"


@pytest.mark.parametrize(("environ", "remote"), [
    ({}, False), ({ENV_DEPLOYMENT: ""}, False), ({ENV_DEPLOYMENT: "local"}, False), ({ENV_DEPLOYMENT: "remote"}, True),
])
def test_only_an_explicit_remote_makes_a_deployment_remote(environ, remote):
    assert treated_as_remote(environ) is remote


def test_an_unknown_value_is_refused_naming_the_setting():
    with pytest.raises(DeploymentError, match=r"THINGPRESS_DEPLOYMENT='aws': expected 'remote' or 'local'"):
        treated_as_remote({ENV_DEPLOYMENT: "aws"})


@pytest.mark.parametrize("ci", [True, False])
@pytest.mark.parametrize("target", ["local", "aws"])
def test_a_remote_deployment_skips_with_the_reason_in_ci_too(ci, target):
    action, message = local_only_outcome(REASON, remote=True, target=target, runner_running=None, ci=ci)
    assert action == "skip"
    assert message.startswith(REASON) and "THINGPRESS_DEPLOYMENT=remote" in message


@pytest.mark.parametrize(("ci", "action"), [(True, "fail"), (False, "skip")])
def test_a_local_run_against_a_deployment_elsewhere_fails_in_ci(ci, action):
    got, message = local_only_outcome(REASON, remote=False, target="aws", runner_running=None, ci=ci)
    assert got == action
    assert "prerequisite missing: the deployment's target is 'aws'" in message and message.endswith(REASON)


@pytest.mark.parametrize(("ci", "action"), [(True, "fail"), (False, "skip")])
def test_a_local_run_without_the_runner_fails_in_ci(ci, action):
    got, message = local_only_outcome(REASON, remote=False, target="local", runner_running=False, ci=ci)
    assert got == action
    assert "the local Lambda runner is not running" in message


@pytest.mark.parametrize("ci", [True, False])
def test_a_local_run_with_its_prerequisites_runs(ci):
    assert local_only_outcome(REASON, remote=False, target="local", runner_running=True, ci=ci) is None
