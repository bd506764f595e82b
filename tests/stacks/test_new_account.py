"""What a real, new account needs from the stack, and the least-privilege fixes the IAM check found.

Each test names the AWS rule it holds the synthesized stack to.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tfjson import as_list, find_by, redrive_of, resources

from stacks import defaults
from thingpress.vendors import ArchiveLimits


def _role_policy(doc: dict[str, Any], key: str) -> dict[str, Any]:
    _, body = find_by(doc, "aws_iam_role_policy", "role", "${aws_iam_role." + next(
        n for n, r in resources(doc, "aws_iam_role").items() if r["name"].endswith(f"-{key}-role")) + ".id}")
    return json.loads(body["policy"])


def _actions(policy: dict[str, Any]) -> set[str]:
    return {a for st in policy["Statement"] for a in as_list(st["Action"])}


@pytest.fixture(scope="module")
def opted_in(synth, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The aws stack with per-certificate policy attachment and reserved concurrency."""
    import dataclasses

    from cdktf import App

    from stacks.config import StackConfig
    from stacks.stack import ThingpressStack

    outdir = tmp_path_factory.mktemp("optin") / "cdktf.out"
    app = App(outdir=str(outdir))
    config = dataclasses.replace(synth.configs["aws"], policy_attachment="certificate", reserved_concurrency="mapping")
    assert StackConfig.from_env({"THINGPRESS_POLICY_ATTACHMENT": "certificate",
                                 "THINGPRESS_RESERVED_CONCURRENCY": "mapping"}).reserved_concurrency == "mapping"
    ThingpressStack(app, config)
    app.synth()
    return dict(json.loads((outdir / "stacks" / config.stack_name / "cdk.tf.json").read_text()))


def test_default_synth_reserves_no_concurrency(synth) -> None:
    # Lambda refuses a reservation that leaves the account under its unreserved minimum (10 on a new account).
    for doc in synth.json.values():
        for fn in resources(doc, "aws_lambda_function").values():
            assert "reserved_concurrent_executions" not in fn, fn["function_name"]


def test_reserved_concurrency_is_opt_in_and_equals_the_mapping_cap(opted_in) -> None:
    mappings = {m["function_name"]: m for m in resources(opted_in, "aws_lambda_event_source_mapping").values()}
    for address, fn in resources(opted_in, "aws_lambda_function").items():
        mapping = mappings.get("${aws_lambda_function." + address + ".arn}")
        if mapping is None:  # the watchdog (a schedule, not a queue): its sweeps may overlap, nothing reserved
            assert fn["function_name"].endswith("-watchdog") and "reserved_concurrent_executions" not in fn
            continue
        assert fn["reserved_concurrent_executions"] == mapping["scaling_config"]["maximum_concurrency"]


def test_device_policy_is_attached_once_to_the_thing_group_and_the_importer_cannot_attach_policies(aws_json) -> None:
    (attachment,) = resources(aws_json, "aws_iot_policy_attachment").values()
    assert attachment["target"].startswith("${aws_iot_thing_group.") and attachment["target"].endswith(".arn}")
    assert attachment["policy"].startswith("${aws_iot_policy.")
    _, importer = find_by(aws_json, "aws_lambda_function", "function_name", "thingpress-dev-importer")
    assert "THINGPRESS_POLICY_NAMES" not in importer["environment"]["variables"]
    assert "iot:AttachPolicy" not in _actions(_role_policy(aws_json, "importer"))


def test_per_certificate_attachment_grants_attach_policy_on_certificates_only(opted_in) -> None:
    assert not resources(opted_in, "aws_iot_policy_attachment")
    _, importer = find_by(opted_in, "aws_lambda_function", "function_name", "thingpress-dev-importer")
    assert importer["environment"]["variables"]["THINGPRESS_POLICY_NAMES"].startswith("${aws_iot_policy.")
    (statement,) = [st for st in _role_policy(opted_in, "importer")["Statement"] if "iot:AttachPolicy" in as_list(st["Action"])]
    assert as_list(statement["Resource"]) == [
        "arn:${data.aws_partition.partition.partition}:iot:us-east-1:${data.aws_caller_identity.account.account_id}:cert/*"]


def test_importer_iot_grants_name_only_resources_iam_authorizes_them_on(aws_json) -> None:
    policy = _role_policy(aws_json, "importer")
    by_action = {a: as_list(st["Resource"]) for st in policy["Statement"] for a in as_list(st["Action"])}
    prefix = "arn:${data.aws_partition.partition.partition}:iot:us-east-1:${data.aws_caller_identity.account.account_id}:"
    assert by_action["iot:CreateThing"] == [prefix + "thing/*"]
    assert by_action["iot:AttachThingPrincipal"] == [prefix + "cert/*"]


def test_never_called_actions_are_not_granted(synth) -> None:
    """No role may change a message's visibility; only the lifecycle function reads a thing (DescribeThing:
    its attributes, before it merges the operator's within the thing's limit)."""
    for doc in synth.json.values():
        policies = resources(doc, "aws_iam_role_policy")
        granted = {(address, a) for address in policies
                   for st in json.loads(policies[address]["policy"])["Statement"] for a in as_list(st["Action"])}
        assert not {a for _, a in granted} & {"sqs:ChangeMessageVisibility"}
        assert {address for address, a in granted if a == "iot:DescribeThing"} == {
            address for address in policies if address.startswith("lifecycle_")}


def test_manifest_queues_allow_five_receives_and_the_import_queue_keeps_messages_14_days(aws_json) -> None:
    queues = {q["name"]: q for q in resources(aws_json, "aws_sqs_queue").values()}
    manifests = [q for n, q in queues.items() if n.endswith("-manifests")]
    assert len(manifests) == 4
    for queue in manifests:
        # AWS: maxReceiveCount of at least 5 on a queue that is a Lambda event source.
        assert redrive_of(aws_json, queue["name"])["maxReceiveCount"] >= 5
    assert queues["thingpress-dev-import"]["message_retention_seconds"] == 14 * 24 * 3600


def test_infineon_provider_tmp_covers_its_archive_and_extraction_limits(synth) -> None:
    worst = ArchiveLimits().max_spooled_bytes
    for doc in synth.json.values():
        (fn,) = [f for f in resources(doc, "aws_lambda_function").values()
                 if f["function_name"].endswith("-provider-infineon")]
        size = fn["ephemeral_storage"]["size"]
        assert size * 1024 * 1024 >= worst
        assert defaults.MIN_EPHEMERAL_MB <= size <= defaults.MAX_EPHEMERAL_MB


@pytest.mark.parametrize("name", ["THINGPRESS_POLICY_ATTACHMENT", "THINGPRESS_RESERVED_CONCURRENCY"])
def test_a_bad_attachment_or_reservation_setting_is_named(name) -> None:
    from stacks.config import ConfigError, StackConfig

    with pytest.raises(ConfigError, match=f"{name}: must be one of .*, got 'always'"):
        StackConfig.from_env({name: "always"})
    assert StackConfig.from_env({}).policy_attachment == "thing-group"
    assert StackConfig.from_env({}).reserved_concurrency == "none"
