"""checkov on every synthesized stack, framework terraform_json (``terraform`` would
scan nothing and pass): 0 failed checks. Skips live in .checkov.yaml, once each,
with reasons. checkov runs from its own virtualenv (the Makefile's install target creates it): it pins
boto3==1.35.49, which must not leak into the project's environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / "build" / "tools" / "checkov" / "bin" / "checkov"
CONFIG = REPO / ".checkov.yaml"


@pytest.fixture(scope="module")
def checkov() -> Path:
    if not CHECKOV.is_file():
        message = f"{CHECKOV.relative_to(REPO)} is missing: run `make install` (checkov==3.3.30 in its own virtualenv)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHECKOV


def test_every_skip_is_listed_once_with_a_reason():
    text = CONFIG.read_text()
    ids = re.findall(r"^\s*-\s*(CKV2?_[A-Z]+_\d+)\s*$", text, re.M)
    assert ids and len(ids) == len(set(ids))
    for check in ids:
        before = text.split(f"- {check}")[0].rstrip().splitlines()
        assert before[-1].strip().startswith("#"), f"{check} has no reason comment above it"


@pytest.mark.parametrize("target", ["aws", "local"])
def test_checkov_finds_no_failed_check(synth, checkov, target):
    stack_dir = synth.stack_dir(target)
    done = subprocess.run(
        [str(checkov), "-d", str(stack_dir), "--framework", "terraform_json", "--config-file", str(CONFIG),
         "-o", "json", "--compact", "--skip-download"],
        capture_output=True, text=True, check=False, timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    summary = report["summary"]
    print(f"checkov {target}: {summary}")
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report["results"]["failed_checks"]]
    assert failed == []
    assert summary["parsing_errors"] == 0
    # ~137 checks pass on the 74 resources; a scan of the wrong framework or file passes none.
    assert summary["passed"] >= 120, "checkov scanned (almost) nothing: wrong framework or file?"
