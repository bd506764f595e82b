"""Synthesize the stacks ONCE per test session (importing the provider bindings
costs ~2.3 s, by submodule: stacks.bindings): the aws target (suffix dev, S3 backend) and the local target, with
a fixed configuration, into a session temp folder.

The two external checks of the synthesized JSON (checkov, ``terraform validate``:
subprocesses, ~25 s together, mostly start-up) start in the background as soon as
synthesis is done, when the session runs them; their tests run last in the ``synth``
group (``tests/conftest.py``) and only wait for the results, so the in-process stack
tests run meanwhile.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from stack_checks import ExternalChecks

HERE = Path(__file__).resolve().parent
FIXED = {
    "THINGPRESS_REGION": "us-east-1",
    "THINGPRESS_MICROCHIP_SIGNERS_DIR": str(HERE / "fixtures" / "signers"),
    "THINGPRESS_TAGS": '{"owner": "iot-platform"}',
}
AWS_ENV = {**FIXED, "THINGPRESS_ENV": "dev", "THINGPRESS_TARGET": "aws", "THINGPRESS_BACKEND": "s3",
           "THINGPRESS_STATE_BUCKET": "example-terraform-state"}
LOCAL_ENV = {**FIXED, "THINGPRESS_ENV": "local", "THINGPRESS_TARGET": "local",
             "THINGPRESS_ENDPOINT": "http://127.0.0.1:5000"}


@dataclass
class Synth:
    outdir: Path
    app: Any
    stacks: dict[str, Any]  # target -> ThingpressStack
    json: dict[str, dict[str, Any]]  # target -> cdk.tf.json
    configs: dict[str, Any]

    def stack_dir(self, target: str) -> Path:
        return self.outdir / "stacks" / self.configs[target].stack_name


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from cdktf import App

    from stacks.config import StackConfig
    from stacks.stack import ThingpressStack

    outdir = tmp_path_factory.mktemp("cdktf") / "cdktf.out"
    app = App(outdir=str(outdir))
    configs = {"aws": StackConfig.from_env(AWS_ENV), "local": StackConfig.from_env(LOCAL_ENV)}
    stacks = {t: ThingpressStack(app, c) for t, c in configs.items()}
    app.synth()
    data = {t: json.loads((outdir / "stacks" / c.stack_name / "cdk.tf.json").read_text()) for t, c in configs.items()}
    gc.freeze()  # the provider bindings live until the end: see tests/conftest.py
    return Synth(outdir, app, stacks, data, configs)


@pytest.fixture(scope="session")
def aws_json(synth: Synth) -> dict[str, Any]:
    return synth.json["aws"]


@pytest.fixture(scope="session")
def external_checks(synth: Synth, tmp_path_factory: pytest.TempPathFactory) -> ExternalChecks:
    return ExternalChecks(synth, tmp_path_factory.mktemp("validate"))


@pytest.fixture(autouse=True)
def _start_external_checks(request: pytest.FixtureRequest) -> None:
    """With the first test that synthesizes, start the external checks if this session runs them."""
    if "synth" in request.fixturenames and any("external_checks" in getattr(item, "fixturenames", ())
                                               for item in request.session.items):
        request.getfixturevalue("external_checks").start()
