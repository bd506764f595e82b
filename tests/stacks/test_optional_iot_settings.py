"""Synth with the optional IoT settings: a thing-name template, several existing groups and policies.

Two stacks in one app (one synth): ``qa`` in ``thing-group`` mode, ``qb`` in ``certificate`` mode.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from thingpress import settings
from tfjson import resources

from stacks import outputs
from stacks.naming import VENDORS

COMMON = {"THINGPRESS_BACKEND": "local", "THINGPRESS_MICROCHIP_SIGNERS_DIR": "none",
          "THINGPRESS_THING_GROUP": "fleet-a,fleet-b", "THINGPRESS_IOT_POLICY_NAME": "ota"}
TEMPLATE = "{prefix}{vendor}-{serial}"
ARN = "arn:${data.aws_partition.partition.partition}:iot:us-east-1:${data.aws_caller_identity.account.account_id}:"


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> dict[str, dict[str, Any]]:
    from cdktf import App

    from stacks.config import StackConfig
    from stacks.stack import ThingpressStack

    outdir = tmp_path_factory.mktemp("optional")
    configs = {
        "qa": StackConfig.from_env({**COMMON, "THINGPRESS_ENV": "qa", "THINGPRESS_THING_NAME_TEMPLATE": TEMPLATE}),
        "qb": StackConfig.from_env({**COMMON, "THINGPRESS_ENV": "qb", "THINGPRESS_POLICY_ATTACHMENT": "certificate"}),
    }
    app = App(outdir=str(outdir))
    for config in configs.values():
        ThingpressStack(app, config)
    app.synth()
    return {s: json.loads((outdir / "stacks" / c.stack_name / "cdk.tf.json").read_text()) for s, c in configs.items()}


def _environments(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {f["function_name"]: f["environment"]["variables"] for f in resources(doc, "aws_lambda_function").values()}


def _importer_grants(doc: dict[str, Any], suffix: str) -> dict[str, dict[str, Any]]:
    """The importer role's statements by Sid."""
    policy = next(p for p in resources(doc, "aws_iam_role_policy").values() if p["role"].startswith("${aws_iam_role.importer_"))
    return {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}


def test_a_template_is_set_on_every_provider_and_nowhere_else(docs, aws_json):
    """The providers name things with it; the lifecycle function resolves vendor device ids with it."""
    env = _environments(docs["qa"])
    with_template = {name for name, variables in env.items() if settings.THING_NAME_TEMPLATE in variables}
    assert with_template == {f"thingpress-qa-provider-{v}" for v in VENDORS} | {"thingpress-qa-lifecycle"}
    assert {env[n][settings.THING_NAME_TEMPLATE] for n in with_template} == {TEMPLATE}
    assert not any(settings.THING_NAME_TEMPLATE in v for v in _environments(docs["qb"]).values())
    assert not any(settings.THING_NAME_TEMPLATE in f["environment"]["variables"]  # the default is not written out
                   for f in resources(aws_json, "aws_lambda_function").values())


def test_the_template_the_providers_apply_is_in_the_outputs(docs, aws_json):
    """Clients (the integration tests, ``Deployment.thing_names``) name things from the outputs alone."""
    assert docs["qa"]["output"][outputs.THING_NAME_TEMPLATE]["value"] == TEMPLATE
    assert docs["qb"]["output"][outputs.THING_NAME_TEMPLATE]["value"] == "{prefix}{name}"
    assert aws_json["output"][outputs.THING_NAME_TEMPLATE]["value"] == "{prefix}{name}"


@pytest.mark.parametrize("suffix", ["qa", "qb"])
def test_every_thing_joins_the_created_group_and_the_existing_ones_and_iam_names_exactly_those(docs, suffix):
    doc = docs[suffix]
    (group_id, group), = resources(doc, "aws_iot_thing_group").items()
    assert group["name"] == f"thingpress-{suffix}-devices"
    created = f"${{aws_iot_thing_group.{group_id}.name}}"
    importer = _environments(doc)[f"thingpress-{suffix}-importer"]
    assert importer[settings.THING_GROUP] == f"{created},fleet-a,fleet-b"
    grants = _importer_grants(doc, suffix)
    assert grants["AddThingToGroup"]["Resource"] == [
        f"{ARN}thinggroup/{created}", f"{ARN}thinggroup/fleet-a", f"{ARN}thinggroup/fleet-b", f"{ARN}thing/*"]


def test_thing_group_mode_attaches_every_policy_to_the_created_group_only(docs):
    doc = docs["qa"]
    (policy_id, _), = resources(doc, "aws_iot_policy").items()
    (group_id, _), = resources(doc, "aws_iot_thing_group").items()
    attachments = sorted((a["policy"], a["target"]) for a in resources(doc, "aws_iot_policy_attachment").values())
    assert attachments == sorted([(f"${{aws_iot_policy.{policy_id}.name}}", f"${{aws_iot_thing_group.{group_id}.arn}}"),
                                  ("ota", f"${{aws_iot_thing_group.{group_id}.arn}}")])
    assert settings.POLICY_NAMES not in _environments(doc)["thingpress-qa-importer"]
    assert "AttachDevicePolicyToCertificate" not in _importer_grants(doc, "qa")


def test_certificate_mode_has_the_importer_attach_every_policy(docs):
    doc = docs["qb"]
    (policy_id, _), = resources(doc, "aws_iot_policy").items()
    assert not resources(doc, "aws_iot_policy_attachment")
    importer = _environments(doc)["thingpress-qb-importer"]
    assert importer[settings.POLICY_NAMES] == f"${{aws_iot_policy.{policy_id}.name}},ota"
    assert _importer_grants(doc, "qb")["AttachDevicePolicyToCertificate"]["Action"] == "iot:AttachPolicy"
