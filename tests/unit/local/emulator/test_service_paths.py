"""Service deliveries judged by the target's policy *and* its key's policy (local/service_paths.py).

AWS: the service principal must be allowed by the queue or topic policy to send, and, for a
target encrypted with a customer managed key (or an encrypted event bus), by the key policy to
use the key (kms:GenerateDataKey, kms:Decrypt); a delivery either refuses is dropped. Each test
changes one policy of a path that otherwise delivers, so the count tells which one moto ignored.
"""

from __future__ import annotations

import json

import boto3
import pytest

from aws_fixtures import REGION, in_process_aws

ACCOUNT = "123456789012"
ROOT = {"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*",
        "Resource": "*"}


def key_policy(*services: str, condition: dict | None = None) -> str:
    statements = [ROOT]
    if services:
        statements.append({"Effect": "Allow", "Principal": {"Service": list(services)},
                           "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
                           **({"Condition": condition} if condition else {})})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def sends(service: str, resource: str, action: str, source_arn: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": action, "Resource": resource,
         "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}}}]})


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    with in_process_aws():
        yield lambda service: boto3.client(service, region_name=REGION)


def queue(aws, name: str, key: str | None = None) -> tuple[str, str]:
    attributes = {"KmsMasterKeyId": key} if key else {}
    url = aws("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def count(aws, url: str) -> int:
    return len(aws("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []))


def new_key(aws, policy: str) -> str:
    return aws("kms").create_key(Policy=policy)["KeyMetadata"]["Arn"]


# ----------------------------------------------------------------- EventBridge rule -> SQS (and the bus key)

def rule_delivers(aws, *, queue_key_policy: str | None, bus_key_policy: str | None = None) -> int:
    events = aws("events")
    bus_key = new_key(aws, bus_key_policy) if bus_key_policy else None
    events.create_event_bus(Name="bus", **({"KmsKeyIdentifier": bus_key} if bus_key else {}))
    rule = events.put_rule(Name="r", EventBusName="bus", EventPattern=json.dumps({"source": ["thingpress"]}))["RuleArn"]
    url, arn = queue(aws, "q", new_key(aws, queue_key_policy) if queue_key_policy else None)
    aws("sqs").set_queue_attributes(QueueUrl=url, Attributes={
        "Policy": sends("events.amazonaws.com", arn, "sqs:SendMessage", rule)})
    events.put_targets(Rule="r", EventBusName="bus", Targets=[{"Id": "q", "Arn": arn}])
    events.put_events(Entries=[{"Source": "thingpress", "DetailType": "x", "Detail": "{}", "EventBusName": "bus"}])
    return count(aws, url)


def test_an_encrypted_queue_gets_the_event_when_its_key_lets_eventbridge_use_it(aws):
    assert rule_delivers(aws, queue_key_policy=key_policy("events.amazonaws.com")) == 1


def test_an_encrypted_queue_whose_key_does_not_let_eventbridge_use_it_gets_nothing(aws):
    assert rule_delivers(aws, queue_key_policy=key_policy("s3.amazonaws.com")) == 0


def test_an_encrypted_bus_delivers_when_its_key_allows_eventbridge_for_this_bus(aws):
    bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/bus"
    documented = {"StringEquals": {"kms:EncryptionContext:aws:events:event-bus:arn": bus, "aws:SourceArn": bus}}
    assert rule_delivers(aws, queue_key_policy=None,
                         bus_key_policy=key_policy("events.amazonaws.com", condition=documented)) == 1


def test_an_encrypted_bus_whose_key_is_for_another_bus_delivers_nothing(aws):
    other = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/other"
    assert rule_delivers(aws, queue_key_policy=None, bus_key_policy=key_policy(
        "events.amazonaws.com", condition={"StringEquals": {"kms:EncryptionContext:aws:events:event-bus:arn": other}})) == 0


# ----------------------------------------------------------------- S3 event notification -> SQS

def s3_notifies(aws, *, queue_policy: bool, key_services: tuple[str, ...] | None) -> int:
    s3 = aws("s3")
    s3.create_bucket(Bucket="tp-bucket")
    url, arn = queue(aws, "q", new_key(aws, key_policy(*key_services)) if key_services is not None else None)
    if queue_policy:
        aws("sqs").set_queue_attributes(QueueUrl=url, Attributes={
            "Policy": sends("s3.amazonaws.com", arn, "sqs:SendMessage", "arn:aws:s3:::tp-bucket")})
    s3.put_bucket_notification_configuration(Bucket="tp-bucket", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_object(Bucket="tp-bucket", Key="incoming/m.txt", Body=b"x")
    bodies = [json.loads(m["Body"]) for m in
              aws("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    tests = [b for b in bodies if b.get("Event") == "s3:TestEvent"]  # sent when the configuration is set
    assert len(tests) == (1 if queue_policy and key_services != () else 0)
    return len([b for b in bodies if "Records" in b])


def test_s3_notifies_a_queue_whose_policy_and_key_allow_it(aws):
    assert s3_notifies(aws, queue_policy=True, key_services=("s3.amazonaws.com",)) == 1


def test_s3_does_not_notify_a_queue_whose_policy_does_not_allow_it(aws):
    assert s3_notifies(aws, queue_policy=False, key_services=None) == 0


def test_s3_does_not_notify_an_encrypted_queue_whose_key_does_not_let_s3_use_it(aws):
    assert s3_notifies(aws, queue_policy=True, key_services=()) == 0


# ----------------------------------------------------------------- CloudWatch alarm action -> SNS

def alarm_publishes(aws, *, key_services: tuple[str, ...]) -> int:
    sns, cloudwatch = aws("sns"), aws("cloudwatch")
    topic = sns.create_topic(Name="alarms", Attributes={"KmsMasterKeyId": new_key(aws, key_policy(*key_services))})
    topic_arn = topic["TopicArn"]
    alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:dlq-not-empty"
    sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy",
                             AttributeValue=sends("cloudwatch.amazonaws.com", topic_arn, "sns:Publish", alarm))
    url, arn = queue(aws, "watch")
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    cloudwatch.put_metric_alarm(AlarmName="dlq-not-empty", MetricName="m", Namespace="n", Statistic="Sum",
                                Period=60, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
                                AlarmActions=[topic_arn])
    cloudwatch.set_alarm_state(AlarmName="dlq-not-empty", StateValue="ALARM", StateReason="test")
    cloudwatch.set_alarm_state(AlarmName="dlq-not-empty", StateValue="ALARM", StateReason="unchanged: no action")
    messages = aws("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for m in messages:
        assert json.loads(json.loads(m["Body"])["Message"])["NewStateValue"] == "ALARM"
    return len(messages)


def test_an_alarm_action_reaches_a_topic_whose_policy_and_key_allow_cloudwatch(aws):
    assert alarm_publishes(aws, key_services=("cloudwatch.amazonaws.com",)) == 1


def test_an_alarm_action_to_a_topic_whose_key_does_not_let_cloudwatch_use_it_is_dropped(aws):
    assert alarm_publishes(aws, key_services=("s3.amazonaws.com",)) == 0
