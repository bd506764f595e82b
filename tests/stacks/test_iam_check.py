"""make iam-check on the synthesized local stack: the call mapping rules, and that a missing grant is a denial."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from thingpress_cli.iamcheck import calls as calls_mod
from thingpress_cli.iamcheck.check import run
from thingpress_cli.iamcheck.data import IamData
from thingpress_cli.iamcheck.stack import load

ACCOUNT = "123456789012"
QUEUE = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/thingpress-local-import"
BUCKET = f"thingpress-local-manifests-{ACCOUNT}-us-east-1"
TABLE = "thingpress-local-audit"
CERT = f"arn:aws:iot:us-east-1:{ACCOUNT}:cert/" + "ab" * 32

#: One invocation of each kind, as the runner records them.
RECORDED = {
    "thingpress-local-provider-generated": [
        ("s3", "GetObject", {"Bucket": BUCKET, "Key": "incoming/generated/m.txt", "VersionId": "v1"}),
        ("sqs", "SendMessageBatch", {"QueueUrl": QUEUE, "Entries": [{"Id": "1", "MessageBody": "{}"}]}),
        ("dynamodb", "BatchWriteItem", {"RequestItems": {TABLE: [{"PutRequest": {"Item": {}}}]}}),
        ("dynamodb", "UpdateItem", {"TableName": TABLE, "Key": {}}),
    ],
    "thingpress-local-importer": [
        ("iot", "RegisterCertificateWithoutCA", {"certificatePem": "-----BEGIN", "status": "ACTIVE"}),
        ("iot", "CreateThing", {"thingName": "Device-1", "thingTypeName": "thingpress-local-device"}),
        ("iot", "AttachThingPrincipal", {"thingName": "Device-1", "principal": CERT}),
        ("iot", "AddThingToThingGroup", {"thingName": "Device-1", "thingGroupName": "thingpress-local-devices"}),
        ("dynamodb", "TransactWriteItems", {"TransactItems": [{"Update": {"TableName": TABLE, "Key": {}}},
                                                              {"Put": {"TableName": TABLE, "Item": {}}}]}),
        ("events", "PutEvents", {"Entries": [{"Source": "thingpress", "DetailType": "Manifest Completed",
                                              "EventBusName": "thingpress-local-events", "Detail": "{}"}]}),
    ],
}


def _record(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for function, calls in RECORDED.items():
        with (folder / f"{function}.jsonl").open("w") as sink:
            for service, operation, params in calls:
                sink.write(json.dumps({"service": service, "operation": operation, "region": "us-east-1",
                                       "params": params}) + "\n")
    return folder


@pytest.fixture(scope="module")
def local_stack(synth) -> Path:
    return synth.stack_dir("local") / "cdk.tf.json"


def test_batch_transaction_and_versioned_operations_map_to_the_actions_iam_authorizes(local_stack, tmp_path) -> None:
    stack, data = load(local_stack, ACCOUNT), IamData()
    principal = stack.functions["thingpress-local-provider-generated"].role_arn

    def actions(service: str, operation: str, params: dict[str, Any]) -> set[tuple[str, str]]:
        call = calls_mod.Call("thingpress-local-provider-generated", service, operation, "us-east-1", params)
        return {(r.action, r.resource) for r in calls_mod.requests_for(call, principal, data, stack)}

    key = stack.queue_key(f"arn:aws:sqs:us-east-1:{ACCOUNT}:thingpress-local-import")
    assert actions("sqs", "SendMessageBatch", {"QueueUrl": QUEUE, "Entries": []}) == {
        ("sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:thingpress-local-import"),
        ("kms:GenerateDataKey", key), ("kms:Decrypt", key)}  # SSE-KMS with the caller's credentials
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{TABLE}"
    assert actions("dynamodb", "TransactWriteItems", RECORDED["thingpress-local-importer"][-2][2]) == {
        ("dynamodb:UpdateItem", table), ("dynamodb:PutItem", table)}
    assert actions("dynamodb", "Query", {"TableName": TABLE, "IndexName": "by_state"}) == {
        ("dynamodb:Query", f"{table}/index/by_state")}  # an index query is authorized on the index
    obj = f"arn:aws:s3:::{BUCKET}/incoming/generated/m.txt"
    assert ("s3:GetObjectVersion", obj) in actions("s3", "GetObject", {"Bucket": BUCKET, "Key": "incoming/generated/m.txt",
                                                                      "VersionId": "v1"})
    assert ("s3:GetObject", obj) in actions("s3", "GetObject", {"Bucket": BUCKET, "Key": "incoming/generated/m.txt"})
    # a Query of an index (the watchdog's by_state) is authorized on the index, not the table
    assert actions("dynamodb", "Query", {"TableName": TABLE, "IndexName": "by_state"}) == {
        ("dynamodb:Query", f"{table}/index/by_state")}
    assert actions("dynamodb", "Query", {"TableName": TABLE}) == {("dynamodb:Query", table)}
    with pytest.raises(calls_mod.Unmappable, match="not in the IAM data"):
        actions("sqs", "NoSuchOperation", {"QueueUrl": QUEUE})


def test_the_stack_allows_what_its_functions_and_services_do(local_stack, tmp_path) -> None:
    out = io.StringIO()
    report = run(local_stack, _record(tmp_path / "calls"), ACCOUNT, out=out)
    assert (report.denied, report.denied_paths, report.ignored_arns, report.unknown) == ([], [], [], []), out.getvalue()
    assert out.getvalue().splitlines()[-1].startswith("iam-check: calls ")


def test_a_missing_grant_is_a_denial(local_stack, tmp_path) -> None:
    doc = json.loads(local_stack.read_text())
    for policy in doc["resource"]["aws_iam_role_policy"].values():
        statements = json.loads(policy["policy"])
        for st in statements["Statement"]:
            if st["Sid"] == "QueueImportsAndContinuations":
                st["Action"] = "sqs:GetQueueUrl"  # sqs:SendMessage removed
        policy["policy"] = json.dumps(statements)
    broken = tmp_path / "cdk.tf.json"
    broken.write_text(json.dumps(doc))
    out = io.StringIO()

    report = run(broken, _record(tmp_path / "calls"), ACCOUNT, out=out)

    assert not report.ok
    assert [(r.principal.rsplit("/", 1)[-1], r.action, verdict) for r, verdict in report.denied] == [
        ("thingpress-local-provider-generated-role", "sqs:SendMessage", "ImplicitlyDenied")]
    assert "DENIED ImplicitlyDenied: arn:aws:iam::123456789012:role/thingpress-local-provider-generated-role " \
           "sqs:SendMessage" in out.getvalue()
    assert out.getvalue().splitlines()[-1].startswith("iam-check: calls 14, denied 1, ")


def test_an_arn_iam_ignores_and_an_unused_grant_are_findings(local_stack, tmp_path) -> None:
    doc = json.loads(local_stack.read_text())
    for policy in doc["resource"]["aws_iam_role_policy"].values():
        statements = json.loads(policy["policy"])
        for st in statements["Statement"]:
            if st["Sid"] == "CreateThings":  # the grant as it was: thing type ARN, DescribeThing
                st["Action"] = ["iot:CreateThing", "iot:DescribeThing"]
                st["Resource"] = [st["Resource"], st["Resource"].replace("thing/*", "thingtype/thingpress-local-device")]
        policy["policy"] = json.dumps(statements)
    broken = tmp_path / "cdk.tf.json"
    broken.write_text(json.dumps(doc))
    out = io.StringIO()

    report = run(broken, _record(tmp_path / "calls"), ACCOUNT, out=out)

    assert not report.denied and not report.ok
    assert [line.split(" ignores ")[0].rsplit(" ", 1)[-1] for line in report.ignored_arns] == [
        "iot:CreateThing", "iot:DescribeThing"]
    assert any("CreateThings: iot:DescribeThing is granted to" in line for line in report.unused)
    assert ", ignored ARNs 2, " in out.getvalue().splitlines()[-1]


def test_an_excuse_covers_the_holders_it_names_and_no_other_role_with_the_same_statement(local_stack, tmp_path) -> None:
    """PutCompletionEventIfLastToFinish is excused on the providers (their runs complete a manifest or not),
    not on the watchdog, whose role carries a statement of the same name: its grant must be exercised."""
    out = io.StringIO()

    report = run(local_stack, _record(tmp_path / "calls"), ACCOUNT, out=out)  # no watchdog call recorded

    assert ("provider_generated", "PutCompletionEventIfLastToFinish", "events:PutEvents") in report.excused
    assert ("watchdog", "PutCompletionEventIfLastToFinish", "events:PutEvents") not in report.excused
    assert any(line.startswith("role thingpress-local-watchdog-role PutCompletionEventIfLastToFinish: "
                               "events:PutEvents is granted to") for line in report.unused), report.unused
    assert f", excused unused grants {len(report.excused)}" in out.getvalue().splitlines()[-1]


def test_the_completion_event_is_allowed_on_its_bus_with_its_source_only(local_stack, tmp_path) -> None:
    """events:PutEvents: the bus ARN from EventBusName, events:source / events:detail-type from the entry."""
    stack, data = load(local_stack, ACCOUNT), IamData()
    principal = stack.functions["thingpress-local-importer"].role_arn
    entry = {"Source": "thingpress", "DetailType": "Manifest Completed", "EventBusName": "thingpress-local-events"}
    call = calls_mod.Call("thingpress-local-importer", "events", "PutEvents", "us-east-1", {"Entries": [entry]})
    (request,) = calls_mod.requests_for(call, principal, data, stack)
    assert (request.action, request.resource) == (
        "events:PutEvents", f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/thingpress-local-events")
    assert {"events:source": "thingpress", "events:detail-type": "Manifest Completed"}.items() <= dict(
        request.context).items()

    RECORDED_OTHER = {"thingpress-local-importer": [("events", "PutEvents", {"Entries": [
        {**entry, "Source": "someone.else"}, {**entry, "EventBusName": "default"}]})]}
    folder = tmp_path / "calls"
    folder.mkdir()
    with (folder / "thingpress-local-importer.jsonl").open("w") as sink:
        for service, operation, params in RECORDED_OTHER["thingpress-local-importer"]:
            sink.write(json.dumps({"service": service, "operation": operation, "region": "us-east-1",
                                   "params": params}) + "\n")
    report = run(local_stack, folder, ACCOUNT, out=io.StringIO())
    assert sorted((r.action, r.resource.rsplit("/", 1)[-1], dict(r.context)["events:source"])
                  for r, _ in report.denied) == [
        ("events:PutEvents", "default", "thingpress"), ("events:PutEvents", "thingpress-local-events", "someone.else")]


def _with_key_policy(local_stack: Path, folder: Path, change) -> Path:
    doc = json.loads(local_stack.read_text())
    (key,) = doc["resource"]["aws_kms_key"].values()
    policy = json.loads(key["policy"])
    change(policy["Statement"])
    key["policy"] = json.dumps(policy)
    changed = folder / "cdk.tf.json"
    changed.write_text(json.dumps(doc))
    return changed


def _describe_key_on_the_source_arn(statements: list) -> None:  # the key policy before issue 22, 6
    (describe,) = [st for st in statements if st["Action"] == "kms:DescribeKey" and "Service" in st["Principal"]]
    describe["Condition"] = {"ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:event-bus/x"}}


def _no_s3_on_the_key(statements: list) -> None:
    for st in statements:
        if isinstance(st["Principal"].get("Service"), list):
            st["Principal"]["Service"].remove("s3.amazonaws.com")


@pytest.mark.parametrize("change", [None, _describe_key_on_the_source_arn, _no_s3_on_the_key])
def test_the_emulator_judges_the_stacks_service_paths_as_iam_check_does(local_stack, tmp_path, change) -> None:
    """thingpress_cli/local/emulator/service_paths.py decides the deliveries of the local deployment with its own
    small evaluator (local/emulator/iam_conditions.py: moto runs in Python); on every service path of the stack,
    as synthesized and with a key policy changed, it must give iam-simulate's verdict."""
    from thingpress_cli.iamcheck.evaluate import resource_policy, simulate
    from thingpress_cli.iamcheck.service_paths import service_paths
    from thingpress_cli.local.emulator.iam_conditions import decision

    stack = load(_with_key_policy(local_stack, tmp_path, change) if change else local_stack, ACCOUNT)
    paths = [r for r in service_paths(stack) if r.principal.endswith(".amazonaws.com")]
    verdicts, _ = simulate(stack, paths)
    emulator = [decision([resource_policy(stack, r)], action=r.action, resource=r.resource, context=dict(r.context),
                         principal={"Service": r.principal}) == "Allow" for r in paths]

    assert emulator == [v == "Allowed" for v in verdicts]
    assert {r.origin for r in paths} >= {"s3 event notification", "alarm action", "event rule target",
                                         "event bus encryption"}
    assert all(emulator) is (change is None)


RESULTS_FUNCTION = "thingpress-local-results"
RESULTS_KEY = "results/generated-0123456789abcdef0123/results.jsonl"
#: The results writer's calls: a small file in one put, a large one in parts, an upload given up.
RESULTS_CALLS = [
    ("dynamodb", "Query", {"TableName": TABLE, "ConsistentRead": True}),
    ("s3", "PutObject", {"Bucket": BUCKET, "Key": RESULTS_KEY.replace("results.jsonl", "errors.jsonl"),
                         "IfNoneMatch": "*", "ContentType": "application/x-ndjson"}),
    ("s3", "CreateMultipartUpload", {"Bucket": BUCKET, "Key": RESULTS_KEY, "ContentType": "application/x-ndjson"}),
    ("s3", "UploadPart", {"Bucket": BUCKET, "Key": RESULTS_KEY, "UploadId": "u", "PartNumber": 1}),
    ("s3", "CompleteMultipartUpload", {"Bucket": BUCKET, "Key": RESULTS_KEY, "UploadId": "u", "IfNoneMatch": "*"}),
    ("s3", "AbortMultipartUpload", {"Bucket": BUCKET, "Key": RESULTS_KEY, "UploadId": "u"}),
    ("dynamodb", "UpdateItem", {"TableName": TABLE, "Key": {}}),
]


def test_the_results_writers_uploads_are_puts_under_sse_kms_and_allowed_under_results_only(local_stack,
                                                                                           tmp_path) -> None:
    stack, data = load(local_stack, ACCOUNT), IamData()
    principal = stack.functions[RESULTS_FUNCTION].role_arn
    key = stack.bucket_key(BUCKET)
    obj = f"arn:aws:s3:::{BUCKET}/{RESULTS_KEY}"

    def actions(operation: str) -> set[tuple[str, str]]:
        (params,) = [p for _, op, p in RESULTS_CALLS if op == operation]
        call = calls_mod.Call(RESULTS_FUNCTION, "s3", operation, "us-east-1", params)
        return {(r.action, r.resource) for r in calls_mod.requests_for(call, principal, data, stack)}

    assert key and actions("CreateMultipartUpload") == {("s3:PutObject", obj), ("kms:GenerateDataKey", key)}
    assert actions("UploadPart") == actions("CompleteMultipartUpload") == {("s3:PutObject", obj),
                                                                            ("kms:Decrypt", key)}
    assert actions("AbortMultipartUpload") == {("s3:AbortMultipartUpload", obj)}

    calls = tmp_path / "calls"
    calls.mkdir()
    outside = ("s3", "PutObject", {"Bucket": BUCKET, "Key": "incoming/generated/results.jsonl"})
    with (calls / f"{RESULTS_FUNCTION}.jsonl").open("w") as sink:
        for service, operation, params in [*RESULTS_CALLS, outside]:
            sink.write(json.dumps({"service": service, "operation": operation, "region": "us-east-1",
                                   "params": params}) + "\n")
    out = io.StringIO()
    report = run(local_stack, calls, ACCOUNT, out=out)
    assert [(r.action, r.resource) for r, _ in report.denied] == [
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/incoming/generated/results.jsonl")], out.getvalue()
    assert not [line for line in report.unused if RESULTS_FUNCTION in line], report.unused
