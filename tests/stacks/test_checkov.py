"""checkov on every synthesized stack, framework terraform_json (``terraform`` would
scan nothing and pass): 0 failed checks. Skips live in .checkov.yaml, once each,
with reasons. checkov runs from its own virtualenv (the Makefile's install target creates it): it pins
boto3==1.35.49, which must not leak into the project's environment.

checkov runs once for both stacks (its start-up, ~10-25 s, is most of its cost);
each stack's checks are then told apart by the file they were found in. The run starts in the
background right after synthesis (``stack_checks.ExternalChecks``)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from stack_checks import CHECKOV, REPO, TARGETS
from stack_checks import CHECKOV_CONFIG as CONFIG


@pytest.fixture(scope="module")
def checkov() -> Path:
    if not CHECKOV.is_file():
        message = f"{CHECKOV.relative_to(REPO)} is missing: run `make install` (checkov==3.3.30 in its own virtualenv)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHECKOV


@pytest.fixture(scope="module")
def checkov_report(external_checks, checkov) -> dict:
    """The one checkov run over every target's cdk.tf.json."""
    report = json.loads(external_checks.result("checkov").stdout)
    return report[0] if isinstance(report, list) else report


def _checks_of(report: dict, outcome: str, stack_name: str) -> list[dict]:
    """The ``outcome`` (passed/failed) checks checkov found in that stack's cdk.tf.json."""
    return [c for c in report["results"][f"{outcome}_checks"] if c["file_path"].endswith(f"/{stack_name}/cdk.tf.json")]


def test_every_skip_is_listed_once_with_a_reason():
    text = CONFIG.read_text()
    ids = re.findall(r"^\s*-\s*(CKV2?_[A-Z]+_\d+)\s*$", text, re.M)
    assert ids and len(ids) == len(set(ids))
    for check in ids:
        before = text.split(f"- {check}")[0].rstrip().splitlines()
        assert before[-1].strip().startswith("#"), f"{check} has no reason comment above it"


@pytest.mark.parametrize("target", TARGETS)
def test_checkov_finds_no_failed_check(synth, checkov_report, target):
    stack_name = synth.configs[target].stack_name
    passed = _checks_of(checkov_report, "passed", stack_name)
    print(f"checkov {target}: {len(passed)} passed; whole run: {checkov_report['summary']}")
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in _checks_of(checkov_report, "failed", stack_name)]
    assert failed == []
    assert checkov_report["summary"]["failed"] == 0
    assert checkov_report["summary"]["parsing_errors"] == 0
    # ~137 checks pass on the 74 resources; a scan of the wrong framework or file passes none.
    assert len(passed) >= 120, "checkov scanned (almost) nothing: wrong framework or file?"
