"""The emulator's EventBridge -> SQS delivery follows the queue policy, as AWS does (local/emulator/service_paths.py).

AWS: EventBridge user guide, "Amazon SQS permissions": the queue policy must allow
events.amazonaws.com sqs:SendMessage (here with aws:SourceArn the rule); else the event is dropped.
"""

from __future__ import annotations

import json

import boto3
import pytest

from aws_fixtures import REGION, in_process_aws

BUS = "bus"


def policy(queue_arn: str, source_arn: str, *, tls_only: bool = True) -> str:
    statements = [{"Sid": "RuleSends", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                   "Action": "sqs:SendMessage", "Resource": queue_arn,
                   "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}}}]
    if tls_only:
        statements.append({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "sqs:*",
                           "Resource": queue_arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@pytest.fixture
def clients(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    with in_process_aws():
        yield boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)


def delivered(clients, queue_policy) -> int:
    """Put one matching event; how many messages reach the rule's queue under ``queue_policy(queue, rule)``."""
    events, sqs = clients
    events.create_event_bus(Name=BUS)
    rule = events.put_rule(Name="r", EventBusName=BUS, EventPattern=json.dumps({"source": ["thingpress"]}))["RuleArn"]
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    text = queue_policy(arn, rule)
    if text:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": text})
    events.put_targets(Rule="r", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
    answer = events.put_events(Entries=[{"Source": "thingpress", "DetailType": "x", "Detail": "{}",
                                         "EventBusName": BUS}])
    assert answer["FailedEntryCount"] == 0  # PutEvents succeeds either way: the delivery is what fails
    return len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []))


def test_a_queue_whose_policy_allows_the_rule_gets_the_event_tls_only_deny_included(clients):
    assert delivered(clients, lambda queue, rule: policy(queue, rule)) == 1


def test_a_queue_without_a_policy_gets_nothing(clients):
    assert delivered(clients, lambda queue, rule: None) == 0


def test_a_queue_allowing_another_rule_gets_nothing(clients):
    assert delivered(clients, lambda queue, rule: policy(queue, rule.replace("rule/bus/r", "rule/bus/other"))) == 0


def test_a_deny_for_the_service_wins(clients):
    def denying(queue, rule):
        doc = json.loads(policy(queue, rule, tls_only=False))
        doc["Statement"].append({"Effect": "Deny", "Principal": {"Service": "events.amazonaws.com"},
                                 "Action": "sqs:SendMessage", "Resource": queue})
        return json.dumps(doc)

    assert delivered(clients, denying) == 0
