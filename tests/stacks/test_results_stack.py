"""The results writer in the synthesized stack (aws target, suffix dev): its rule, queue and function,
its least-privilege role, the lifecycle of its files, and that its files never reach a provider."""

from __future__ import annotations

import json

from thingpress import settings
from thingpress.results.keys import RESULTS_PREFIX, results_keys
from tfjson import as_list, by_ref, find_by, ref, resources, role_statements

from stacks import defaults
from stacks.naming import RESULTS, VENDORS

BUCKET = "thingpress-dev-manifests-${data.aws_caller_identity.account.account_id}-us-east-1"
BUS = "thingpress-dev-events"


def _bucket(aws_json):
    name, _ = find_by(aws_json, "aws_s3_bucket", "bucket", BUCKET)
    return name


def _function(aws_json):
    return find_by(aws_json, "aws_lambda_function", "function_name", "thingpress-dev-results")


def _statements(aws_json) -> dict[str, dict]:
    return role_statements(aws_json, _function(aws_json))


def test_a_rule_on_the_bus_sends_every_completion_event_to_the_results_queue(aws_json):
    (rule_name, rule), = [(n, r) for n, r in resources(aws_json, "aws_cloudwatch_event_rule").items()
                          if r["name"] == "thingpress-dev-results"]
    assert json.loads(rule["event_pattern"]) == {"source": ["thingpress"], "detail-type": ["Manifest Completed"]}
    assert by_ref(aws_json, rule["event_bus_name"])[1]["name"] == BUS
    (target,) = [t for t in resources(aws_json, "aws_cloudwatch_event_target").values()
                 if t["rule"] == ref("aws_cloudwatch_event_rule", rule_name, "name")]
    queue_name, queue = by_ref(aws_json, target["arn"])
    assert queue["name"] == "thingpress-dev-results"
    # Only that rule may send (and the queue has its DLQ): test_properties checks every queue's policy.
    (mapping,) = [m for m in resources(aws_json, "aws_lambda_event_source_mapping").values()
                  if m["event_source_arn"] == ref("aws_sqs_queue", queue_name, "arn")]
    fn_name, fn = _function(aws_json)
    assert mapping["function_name"] == ref("aws_lambda_function", fn_name, "arn")
    assert mapping["batch_size"] == defaults.RESULTS_BATCH_SIZE == 1
    assert fn["timeout"] == defaults.RESULTS_TIMEOUT_SECONDS == 900
    assert fn["handler"] == "results_handler.lambda_handler"


def test_the_writer_knows_the_bucket_and_the_table_but_no_bus(aws_json):
    _, fn = _function(aws_json)
    variables = fn["environment"]["variables"]
    assert variables[settings.RESULTS_BUCKET] == ref("aws_s3_bucket", _bucket(aws_json), "bucket")
    assert settings.AUDIT_TABLE in variables and settings.AUDIT_RETENTION_DAYS in variables
    assert settings.EVENT_BUS not in variables


def test_the_writer_may_create_objects_under_results_only_and_read_and_note_the_audit_table(aws_json):
    statements = _statements(aws_json)
    bucket_arn = ref("aws_s3_bucket", _bucket(aws_json), "arn")
    table_arn = ref("aws_dynamodb_table", find_by(aws_json, "aws_dynamodb_table", "name", "thingpress-dev-audit")[0],
                    "arn")
    assert statements["WriteResultsFiles"]["Action"] == ["s3:PutObject", "s3:AbortMultipartUpload"]
    assert statements["WriteResultsFiles"]["Resource"] == f"{bucket_arn}/{RESULTS_PREFIX}*"
    assert (statements["ReadManifestRows"]["Action"], statements["ReadManifestRows"]["Resource"]) == (
        "dynamodb:Query", table_arn)
    assert (statements["NoteResultsOnSummary"]["Action"], statements["NoteResultsOnSummary"]["Resource"]) == (
        "dynamodb:UpdateItem", table_arn)
    assert statements["UseDeploymentKey"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statements["UseDeploymentKey"]["Resource"].startswith("${aws_kms_key.")
    every = {a for st in statements.values() for a in as_list(st["Action"])}
    assert {a for a in every if a.startswith(("s3:", "dynamodb:"))} == {
        "s3:PutObject", "s3:AbortMultipartUpload", "dynamodb:Query", "dynamodb:UpdateItem"}
    assert not [a for a in every if a.startswith(("events:", "iot:", "sqs:SendMessage"))]
    assert set(statements) == {"WriteOwnLogs", "XRayTracesNoResourceLevelPermissions", "UseDeploymentKey",
                               "ConsumeOwnQueue", "WriteResultsFiles", "ReadManifestRows", "NoteResultsOnSummary"}


def test_results_files_expire_with_the_audit_retention(synth, aws_json):
    life = next(lc for lc in resources(aws_json, "aws_s3_bucket_lifecycle_configuration").values()
                if lc["bucket"] == ref("aws_s3_bucket", _bucket(aws_json), "id"))
    (rule,) = [r for r in life["rule"] if r["id"] == "expire-results"]
    assert rule["status"] == "Enabled" and rule["filter"] == [{"prefix": RESULTS_PREFIX}]
    assert rule["expiration"] == [{"days": synth.configs["aws"].audit_retention_days}]
    assert rule["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 1}]


def test_results_files_trigger_no_provider(aws_json):
    """The bucket notifies a vendor's queue of keys under its prefix only (no empty prefix, no suffix
    filter to rely on): the results files, under ``results/``, match none."""
    (_, notification), = resources(aws_json, "aws_s3_bucket_notification").items()
    assert notification["bucket"] == ref("aws_s3_bucket", _bucket(aws_json), "id")
    assert len(notification["queue"]) == len(VENDORS)
    assert not notification.get("lambda_function") and not notification.get("topic")
    assert not notification.get("eventbridge")
    keys = list(results_keys(f"{VENDORS[0]}-0123456789abcdef0123").values())
    for route in notification["queue"]:
        prefix = route.get("filter_prefix") or ""
        assert prefix and not prefix.startswith(RESULTS_PREFIX) and not RESULTS_PREFIX.startswith(prefix)
        assert not [key for key in keys if key.startswith(prefix)], (prefix, keys)


def test_the_results_queue_and_function_are_alarmed(aws_json):
    alarms = {a["alarm_name"] for a in resources(aws_json, "aws_cloudwatch_metric_alarm").values()}
    assert {f"thingpress-dev-{RESULTS}-dlq-not-empty", f"thingpress-dev-{RESULTS}-errors",
            f"thingpress-dev-{RESULTS}-throttles"} <= alarms
