"""Synth-time guards on Lambda environments."""

from __future__ import annotations

import pytest
from thingpress import settings

from stacks import guards


@pytest.mark.parametrize("key", ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME", "_HANDLER",
                                 "LAMBDA_TASK_ROOT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                 "AWS_SESSION_TOKEN", "_X_AMZN_TRACE_ID", "TZ", "AWS_EXECUTION_ENV"])
def test_reserved_keys_are_refused_naming_function_and_key(synth, key):
    errors = guards.check_environment(synth.stacks["aws"], "thingpress-dev-importer", {key: "x"})
    assert errors == [f"function thingpress-dev-importer: environment variable {key} is reserved by AWS Lambda"]


def test_unknown_setting_is_refused(synth):
    errors = guards.check_environment(synth.stacks["aws"], "fn", {"THINGPRESS_AUDIT_TABEL": "x"})
    assert errors == ["function fn: environment variable THINGPRESS_AUDIT_TABEL is not a thingpress setting "
                      "(see thingpress.settings)"]


def test_resource_name_typed_by_hand_is_refused(synth):
    errors = guards.check_environment(synth.stacks["aws"], "fn", {settings.AUDIT_TABLE: "thingpress-dev-audit"})
    assert len(errors) == 1 and "names a resource by hand" in errors[0] and settings.AUDIT_TABLE in errors[0]


def test_configured_existing_name_is_allowed_only_as_configured(synth):
    stack = synth.stacks["aws"]
    ok = guards.check_environment(stack, "fn", {settings.THING_TYPE: "legacy"}, {settings.THING_TYPE: "legacy"})
    bad = guards.check_environment(stack, "fn", {settings.THING_TYPE: "other"}, {settings.THING_TYPE: "legacy"})
    assert ok == [] and len(bad) == 1


def test_reference_to_a_resource_of_the_same_stack_passes(synth):
    from cdktf_cdktf_provider_aws.dynamodb_table import DynamodbTable

    stack = synth.stacks["aws"]
    table = next(c for c in stack.node.find_all() if isinstance(c, DynamodbTable))
    assert guards.check_environment(stack, "fn", {settings.AUDIT_TABLE: table.name}) == []


def test_reference_to_another_stacks_resource_is_refused(synth):
    from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue

    other = next(c for c in synth.stacks["local"].node.find_all() if isinstance(c, SqsQueue))
    errors = guards.check_environment(synth.stacks["aws"], "fn", {settings.IMPORT_QUEUE_URL: other.url})
    assert len(errors) == 1
    assert errors[0].startswith(f"function fn: environment variable {settings.IMPORT_QUEUE_URL} "), errors


def test_non_resource_settings_may_be_literals(synth):
    assert guards.check_environment(synth.stacks["aws"], "fn", {settings.VENDOR: "espressif",
                                                                 "POWERTOOLS_SERVICE_NAME": "x"}) == []
