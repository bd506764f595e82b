"""``terraform validate`` on each synthesized stack, offline through the provider
mirror config (thingpress_cli.core.toolchain), in a temp folder (init -backend=false).

One ``terraform init`` serves both stacks (same provider); validate reads no asset
files, so only cdk.tf.json is copied. The runs start in the background right after
synthesis (``conftest.ExternalChecks``); these tests check their answers.
"""

from __future__ import annotations

import json

import pytest
from stack_checks import TARGETS


@pytest.mark.parametrize("target", TARGETS)
def test_terraform_validate(external_checks, target):
    done = external_checks.result("validate")[target]
    result = json.loads(done.stdout)
    problems = [f"{d['severity']}: {d['summary']} {d.get('detail', '')}" for d in result["diagnostics"]]
    assert result["valid"], problems
    assert not [p for p in problems if p.startswith("error")]
