"""The lifecycle function in the synthesized stack (aws target, suffix dev): its queue and function, its
least-privilege role (certificates and things, the audit table's by_thing index, results/lifecycle/ only),
and the outputs the commands send to."""

from __future__ import annotations

from thingpress import settings
from tfjson import find_by, ref, resources, role_statements

from stacks import defaults, outputs

PREFIX = "arn:${data.aws_partition.partition.partition}:iot:us-east-1:${data.aws_caller_identity.account.account_id}:"


def _function(aws_json):
    return find_by(aws_json, "aws_lambda_function", "function_name", "thingpress-dev-lifecycle")


def _statements(aws_json) -> dict[str, dict]:
    return role_statements(aws_json, _function(aws_json))


def test_the_lifecycle_queue_feeds_the_function_one_batch_at_a_time(aws_json):
    queue_name, _ = find_by(aws_json, "aws_sqs_queue", "name", "thingpress-dev-lifecycle")
    (mapping,) = [m for m in resources(aws_json, "aws_lambda_event_source_mapping").values()
                  if m["event_source_arn"] == ref("aws_sqs_queue", queue_name, "arn")]
    fn_name, fn = _function(aws_json)
    assert mapping["function_name"] == ref("aws_lambda_function", fn_name, "arn")
    assert mapping["batch_size"] == defaults.LIFECYCLE_BATCH_SIZE == 1
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert fn["handler"] == "lifecycle_handler.lambda_handler"
    variables = fn["environment"]["variables"]
    assert settings.RESULTS_BUCKET in variables and settings.IOT_TPS in variables
    assert variables[settings.IMPORT_CONCURRENCY] == str(defaults.LIFECYCLE_MAX_CONCURRENCY)
    assert settings.EVENT_BUS not in variables  # it completes no manifest
    assert aws_json["output"][outputs.LIFECYCLE_QUEUE_URL]["value"] == ref("aws_sqs_queue", queue_name, "url")


def test_the_role_reaches_certificates_things_the_table_and_its_results_only(aws_json):
    st = _statements(aws_json)
    assert st["ReadAndSetCertificateStatus"]["Action"] == [
        "iot:DescribeCertificate", "iot:ListPrincipalThings", "iot:UpdateCertificate"]
    assert st["ReadAndSetCertificateStatus"]["Resource"] == PREFIX + "cert/*"
    assert st["ReadAndSetThingAttributes"]["Resource"] == PREFIX + "thing/*"
    assert st["ResolveEntries"]["Action"] == "dynamodb:Query"
    assert st["ResolveEntries"]["Resource"][1].endswith("/index/by_thing")
    assert st["RecordJobRows"]["Action"] == ["dynamodb:PutItem", "dynamodb:UpdateItem"]
    assert st["WriteJobResultsFiles"]["Resource"].endswith("/results/lifecycle/*")
    granted = {a for s in st.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not granted & {"iot:DeleteCertificate", "iot:DeleteThing", "dynamodb:Scan", "dynamodb:DeleteItem",
                          "s3:GetObject", "events:PutEvents"}
