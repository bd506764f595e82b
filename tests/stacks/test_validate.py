"""``terraform validate`` on each synthesized stack, offline through the provider
mirror config (thingpress_cli.core.toolchain), in a temp folder (init -backend=false).

Both stacks are validated in one run, each a child module of one root, so the provider's
schema is loaded once (``stack_checks.terraform_validate``); validate reads no asset files,
so only cdk.tf.json is copied. The run starts in the background right after
synthesis (``conftest.ExternalChecks``); these tests check their answers.
"""

from __future__ import annotations

import pytest
from stack_checks import TARGETS


@pytest.mark.parametrize("target", TARGETS)
def test_terraform_validate(external_checks, target):
    validation = external_checks.result("validate")[target]
    assert not validation.errors, validation.output
