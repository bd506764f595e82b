"""The emulator extension: IoT tag APIs, AWS-true certificate ids, no moto SQS->Lambda delivery."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import zipfile

import pytest
from botocore.exceptions import ClientError

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]})


def self_signed_pem(cn: str) -> tuple[str, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), cert.public_bytes(serialization.Encoding.DER)


def test_tag_untag_and_list_tags_for_resource(aws):
    iot = aws("iot")
    arn = iot.create_thing_group(thingGroupName="ext-group")["thingGroupArn"]
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == []

    iot.tag_resource(resourceArn=arn, tags=[{"Key": "project", "Value": "thingpress"}, {"Key": "env", "Value": "x"}])
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": "local"}])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "env", "Value": "local"}, {"Key": "project", "Value": "thingpress"},
    ]
    iot.untag_resource(resourceArn=arn, tagKeys=["env"])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "project", "Value": "thingpress"}]


def test_tags_given_at_creation_are_listed(aws):
    iot = aws("iot")
    tags = [{"Key": "project", "Value": "thingpress"}]
    policy_arn = iot.create_policy(policyName="ext-policy", policyDocument=POLICY, tags=tags)["policyArn"]
    type_arn = iot.create_thing_type(thingTypeName="ext-type", tags=tags)["thingTypeArn"]
    assert iot.list_tags_for_resource(resourceArn=policy_arn)["tags"] == tags
    assert iot.list_tags_for_resource(resourceArn=type_arn)["tags"] == tags


def test_certificate_id_is_the_sha256_of_the_der(aws):
    iot = aws("iot")
    pem, der = self_signed_pem("ext-device")
    answer = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    expected = hashlib.sha256(der).hexdigest()
    assert answer["certificateId"] == expected
    assert answer["certificateArn"].endswith(f":cert/{expected}")


def test_messages_stay_in_a_queue_with_an_event_source_mapping(aws):
    """moto would hand them to its own (Docker) Lambda and delete them; the runner must get them."""
    sqs, lam, iam = aws("sqs"), aws("lambda"), aws("iam")
    url = sqs.create_queue(QueueName="ext-esm")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    role = iam.create_role(RoleName="ext-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("h.py", "def handler(event, context):\n    return None\n")
    lam.create_function(FunctionName="ext-fn", Runtime="python3.11", Role=role, Handler="h.handler", Code={"ZipFile": code.getvalue()})
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="ext-fn", BatchSize=5)

    sqs.send_message(QueueUrl=url, MessageBody="keep me")
    received = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in received] == ["keep me"]
    assert [m["BatchSize"] for m in lam.list_event_source_mappings(FunctionName="ext-fn")["EventSourceMappings"]] == [5]


def test_other_services_pass_through_untouched(aws):
    s3 = aws("s3")
    s3.create_bucket(Bucket="ext-bucket")
    s3.put_object(Bucket="ext-bucket", Key="k", Body=b"v")
    assert s3.get_object(Bucket="ext-bucket", Key="k")["Body"].read() == b"v"


def test_a_tls_only_bucket_policy_allows_sdk_calls_and_still_denies(aws):
    """AWS calls arrive over TLS: DenyInsecureTransport must not refuse them; a plain Deny still applies."""
    s3 = aws("s3")
    s3.create_bucket(Bucket="ext-tls")
    s3.put_bucket_policy(Bucket="ext-tls", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::ext-tls", "arn:aws:s3:::ext-tls/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "DenyLocked", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::ext-tls/locked/*"},
    ]}))
    s3.put_object(Bucket="ext-tls", Key="incoming/m.json", Body=b"[]")
    assert s3.get_object(Bucket="ext-tls", Key="incoming/m.json")["Body"].read() == b"[]"
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket="ext-tls", Key="locked/m.json", Body=b"[]")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize(("conditions", "holds"), [
    ({"Bool": {"aws:SecureTransport": "false"}}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, True),
    ({"StringEquals": {"aws:SourceAccount": "123456789012"}}, False),  # key absent: positive fails
    ({"StringNotEquals": {"aws:SourceAccount": "123456789012"}}, True),  # key absent: negated holds
    ({"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:s3:::x"}}, True),
    ({"StringLike": {"aws:SecureTransport": "t*"}}, True),
])
def test_condition_holds_follows_aws_rules(conditions, holds):
    from thingpress_cli.local.moto_ext import SECURE_CONTEXT, condition_holds

    assert condition_holds(conditions, SECURE_CONTEXT) is holds


def test_create_thing_on_an_existing_thing_answers_as_aws(aws):
    iot = aws("iot")
    iot.create_thing_type(thingTypeName="ext-type")
    first = iot.create_thing(thingName="ext-thing", thingTypeName="ext-type",
                             attributePayload={"attributes": {"manifest": "m1"}})

    same = iot.create_thing(thingName="ext-thing", thingTypeName="ext-type",
                            attributePayload={"attributes": {"manifest": "m1"}})
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_thing(thingName="ext-thing", thingTypeName="ext-type",
                         attributePayload={"attributes": {"manifest": "m2"}})

    assert same["thingId"] == first["thingId"] and same["thingArn"] == first["thingArn"]
    kept = iot.describe_thing(thingName="ext-thing")
    assert kept["attributes"] == {"manifest": "m1"} and kept["thingId"] == first["thingId"]


def test_s3_event_notifications_carry_the_object_version(aws):
    s3, sqs = aws("s3"), aws("sqs")
    s3.create_bucket(Bucket="ext-events")
    s3.put_bucket_versioning(Bucket="ext-events", VersioningConfiguration={"Status": "Enabled"})
    url = sqs.create_queue(QueueName="ext-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket="ext-events", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})

    put = s3.put_object(Bucket="ext-events", Key="a b.txt", Body=b"x")

    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                                 WaitTimeSeconds=2).get("Messages", [])]
    records = [r for b in bodies for r in b.get("Records", [])]
    assert [r["s3"]["object"]["versionId"] for r in records] == [put["VersionId"]]
    assert records[0]["s3"]["object"]["sequencer"]


def test_concurrent_conditional_transactions_succeed_once(aws):
    """Racing transactions with the same attribute_not_exists condition: exactly one wins per key.

    Without serialization moto lets two win now and then (a race: about 1 round in 3 here),
    so the test runs several rounds.
    """
    from concurrent.futures import ThreadPoolExecutor

    ddb = aws("dynamodb")
    for round_ in range(4):
        table = f"ext-tx-{round_}"
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        ddb.put_item(TableName=table, Item={"pk": {"S": "counter"}, "n": {"N": "0"}})

        def once(i: int, table: str = table) -> bool:
            try:
                ddb.transact_write_items(TransactItems=[
                    {"Put": {"TableName": table, "Item": {"pk": {"S": f"row-{i % 20}"}, "payload": {"S": "x" * 2000}},
                             "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Update": {"TableName": table, "Key": {"pk": {"S": "counter"}}, "UpdateExpression": "ADD n :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                ])
                return True
            except ddb.exceptions.TransactionCanceledException:
                return False

        with ThreadPoolExecutor(16) as pool:
            won = sum(pool.map(once, range(320)))

        counter = ddb.get_item(TableName=table, Key={"pk": {"S": "counter"}})["Item"]["n"]["N"]
        assert (won, counter) == (20, "20"), f"round {round_}"


def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws):
    """Item-level rollback: writes made before the failing operation are undone; other items untouched."""
    ddb = aws("dynamodb")
    table = "ext-rollback"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    key = {"pk": {"S": "m"}, "sk": {"S": "#SUMMARY"}}
    ddb.put_item(TableName=table, Item={**key, "n": {"N": "1"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "m"}, "sk": {"S": "taken"}, "v": {"S": "old"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "other"}, "sk": {"S": "x"}, "v": {"S": "kept"}})

    with pytest.raises(ddb.exceptions.TransactionCanceledException) as cancelled:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "m"}, "sk": {"S": "new"}}}},
            {"Update": {"TableName": table, "Key": key, "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Delete": {"TableName": table, "Key": {"pk": {"S": "other"}, "sk": {"S": "x"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": "m"}, "sk": {"S": "taken"}, "v": {"S": "new"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ])

    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    rows = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    assert sorted((r["pk"]["S"], r["sk"]["S"], r.get("n", r.get("v"))) for r in rows) == [
        ("m", "#SUMMARY", {"N": "1"}), ("m", "taken", {"S": "old"}), ("other", "x", {"S": "kept"})]

    ddb.transact_write_items(TransactItems=[  # and a transaction that succeeds still writes everything
        {"Put": {"TableName": table, "Item": {"pk": {"S": "m"}, "sk": {"S": "new"}}}},
        {"Update": {"TableName": table, "Key": key, "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
    ])
    assert ddb.get_item(TableName=table, Key=key)["Item"]["n"] == {"N": "2"}
    assert "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "m"}, "sk": {"S": "new"}})


def test_lookups_by_key_find_things_and_certificates_among_many(aws):
    """describe_thing / attach calls use keyed lookups; a missing thing or certificate is still not found."""
    iot = aws("iot")
    iot.create_policy(policyName="ext-lookup", policyDocument=POLICY)
    arns = []
    for i in range(30):
        pem, _ = self_signed_pem(f"lookup-{i}")
        arns.append(iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")["certificateArn"])
        iot.create_thing(thingName=f"lookup-{i}")
    iot.attach_thing_principal(thingName="lookup-17", principal=arns[17])
    iot.attach_policy(policyName="ext-lookup", target=arns[17])

    assert iot.describe_thing(thingName="lookup-17")["thingName"] == "lookup-17"
    assert iot.list_thing_principals(thingName="lookup-17")["principals"] == [arns[17]]
    assert [p["policyName"] for p in iot.list_attached_policies(target=arns[17])["policies"]] == ["ext-lookup"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName="lookup-")  # a prefix of existing names is not a thing
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_thing_principal(thingName="lookup-3", principal=arns[3].rsplit("/", 1)[0] + "/" + "0" * 64)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_policy(policyName="ext-lookup", target=arns[3].replace(":us-east-1:", ":eu-west-1:"))  # same id, other ARN


def test_messages_sent_while_others_are_deleted_are_kept(aws):
    """moto rebuilt the message list on delete without the send lock: concurrent sends were lost."""
    from concurrent.futures import ThreadPoolExecutor

    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="ext-delete-race", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    for start in range(0, 300, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"old-{start + i}"} for i in range(10)])
    handles = []
    while len(handles) < 300:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        assert got, "the first 300 messages should all be receivable"
        handles += [m["ReceiptHandle"] for m in got]
    for start in range(0, 2000, 10):  # a long queue makes each delete's rebuild slow: the race window
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"bulk-{start + i}"} for i in range(10)])

    def delete_all() -> None:
        for start in range(0, 300, 10):
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[start:start + 10])])

    def send_new() -> None:
        for start in range(0, 300, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": f"new-{start + i}"} for i in range(10)])

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(delete_all), pool.submit(send_new)]:
            future.result()

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])) == (2300, 0)
