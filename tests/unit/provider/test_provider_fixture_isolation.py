"""The ``aws`` fixture: every test starts from the same state, whatever the previous test left.

The resources are created once per process and each test gets a fresh copy of
moto's state (``aws_fixtures.prepared_aws``) and the kept clients as created. The
first test below leaves data, extra resources, changed attributes and client
hooks behind; the second one (pytest runs a module's tests in order) finds none
of them.
"""

from __future__ import annotations

import pytest
from aws_fixtures import MotoState, leave_failing_hooks, prepared_state
from botocore.exceptions import ClientError

from thingpress.audit.keys import INDEX_BY_STATE, INDEX_BY_THING

#: In order, on one worker under pytest-xdist (ungrouped tests go out one by one).
pytestmark = pytest.mark.xdist_group("fixture-isolation-provider")


def test_a_test_leaves_data_resources_settings_and_client_hooks_behind(aws) -> None:
    aws.dynamodb.put_item(TableName=aws.audit.table, Item={
        "pk": {"S": "m#1"}, "sk": {"S": "summary"}, "thing_name": {"S": "Device-1"}, "status": {"S": "FAILED"},
        "state": {"S": "QUEUED"}, "updated_at": {"S": "2026-11-21T01:02:03Z"}})
    aws.dynamodb.create_table(TableName="left-behind", BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
    for body in (b"one", b"two"):
        aws.s3.put_object(Bucket=aws.bucket, Key="manifest.txt", Body=body)
    aws.s3.delete_object(Bucket=aws.bucket, Key="manifest.txt")
    aws.s3.put_bucket_tagging(Bucket=aws.bucket, Tagging={"TagSet": [{"Key": "left", "Value": "behind"}]})
    aws.s3.create_bucket(Bucket="left-behind")
    aws.sqs.send_message(QueueUrl=aws.import_queue, MessageBody="visible")
    aws.sqs.send_message(QueueUrl=aws.manifest_queue, MessageBody="in flight")
    assert aws.sqs.receive_message(QueueUrl=aws.manifest_queue)["Messages"]
    aws.sqs.set_queue_attributes(QueueUrl=aws.import_queue, Attributes={"VisibilityTimeout": "0"})
    aws.sqs.create_queue(QueueName="left-behind")
    aws.sqs.delete_queue(QueueUrl=aws.manifest_queue)
    leave_failing_hooks(s3=aws.s3, sqs=aws.sqs, dynamodb=aws.dynamodb)
    aws.sqs.left_behind = True

    with pytest.raises(AssertionError, match="earlier test"):
        aws.dynamodb.scan(TableName=aws.audit.table)


def test_the_next_test_finds_the_fixtures_state_and_nothing_else(aws) -> None:
    assert not hasattr(aws.sqs, "left_behind")
    assert aws.dynamodb.list_tables()["TableNames"] == [aws.audit.table]
    assert aws.dynamodb.scan(TableName=aws.audit.table)["Items"] == []
    table = aws.dynamodb.describe_table(TableName=aws.audit.table)["Table"]
    assert sorted(index["IndexName"] for index in table["GlobalSecondaryIndexes"]) == sorted(
        [INDEX_BY_THING, INDEX_BY_STATE])
    for index in (INDEX_BY_THING,):
        assert aws.dynamodb.scan(TableName=aws.audit.table, IndexName=index)["Items"] == []

    assert [bucket["Name"] for bucket in aws.s3.list_buckets()["Buckets"]] == [aws.bucket]
    versions = aws.s3.list_object_versions(Bucket=aws.bucket)
    assert "Versions" not in versions and "DeleteMarkers" not in versions
    assert aws.s3.get_bucket_versioning(Bucket=aws.bucket)["Status"] == "Enabled"
    with pytest.raises(ClientError, match="NoSuchTagSet"):
        aws.s3.get_bucket_tagging(Bucket=aws.bucket)

    assert sorted(aws.sqs.list_queues()["QueueUrls"]) == sorted([aws.import_queue, aws.manifest_queue])
    for url in (aws.import_queue, aws.manifest_queue):
        attributes = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"],
                attributes["VisibilityTimeout"]) == ("0", "0", "30")
        assert "Messages" not in aws.sqs.receive_message(QueueUrl=url)


def test_each_test_gets_a_copy_that_shares_nothing_with_the_kept_state(aws) -> None:
    live = MotoState.live()
    assert {bd.service_name for bd in live.backend_dicts()} >= {"s3", "sqs", "dynamodb"}
    assert live.shared_with(prepared_state("provider")) == []
