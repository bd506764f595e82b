"""THINGPRESS_THING_NAME_TEMPLATE reaches the providers (they name things), only when it is not the default."""

from __future__ import annotations

import json

from thingpress import settings
from tfjson import resources
from stacks.naming import VENDORS


def _functions(tmp_path, **env):
    from cdktf import App

    from stacks.config import StackConfig
    from stacks.stack import ThingpressStack

    config = StackConfig.from_env({"THINGPRESS_ENV": "qa", "THINGPRESS_BACKEND": "local",
                                  "THINGPRESS_MICROCHIP_SIGNERS_DIR": "none", **env})
    app = App(outdir=str(tmp_path))
    ThingpressStack(app, config)
    app.synth()
    doc = json.loads((tmp_path / "stacks" / config.stack_name / "cdk.tf.json").read_text())
    return {f["function_name"]: f["environment"]["variables"] for f in resources(doc, "aws_lambda_function").values()}


def test_a_template_is_set_on_every_provider_and_nowhere_else(tmp_path, aws_json):
    env = _functions(tmp_path, THINGPRESS_THING_NAME_TEMPLATE="{prefix}{vendor}-{serial}")
    with_template = {name for name, variables in env.items() if settings.THING_NAME_TEMPLATE in variables}
    assert with_template == {f"thingpress-qa-provider-{v}" for v in VENDORS}
    assert {env[n][settings.THING_NAME_TEMPLATE] for n in with_template} == {"{prefix}{vendor}-{serial}"}
    # the default (today's names) is not written out
    assert not any(settings.THING_NAME_TEMPLATE in f["environment"]["variables"]
                   for f in resources(aws_json, "aws_lambda_function").values())
