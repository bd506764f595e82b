"""SQS queue attributes as AWS sets and answers them (thingpress_cli/local/emulator/sqs_rules.py)."""

from __future__ import annotations

import json


def _policy(arn: str, bucket: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "S3Sends", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
         "Action": "sqs:SendMessage", "Resource": arn,
         "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}}}]})


def _queue(sqs, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_a_redrive_policy_and_a_visibility_timeout_keep_the_queue_policy(aws):
    sqs = aws("sqs")
    _, dlq_arn = _queue(sqs, "rules-dlq")
    url = sqs.create_queue(QueueName="rules-q", Attributes={"Policy": _policy("arn:aws:sqs:::rules-q", "b")})["QueueUrl"]
    created = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]

    # what aws_sqs_queue_redrive_policy does after the queue's creation, and what chaos does
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "7"})

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["Policy"]) == json.loads(created)
    assert attributes["VisibilityTimeout"] == "7" and dlq_arn in attributes["RedrivePolicy"]


def test_an_empty_policy_removes_it_and_a_named_one_replaces_it(aws):
    sqs = aws("sqs")
    url, arn = _queue(sqs, "rules-replace")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": _policy(arn, "first")})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": _policy(arn, "second")})
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == "arn:aws:s3:::second"

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    assert "Policy" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_s3_still_notifies_a_queue_after_its_dead_letter_queue_is_set(aws):
    """The deployment's order: queue with its policy, then the redrive policy, then a manifest."""
    s3, sqs = aws("s3"), aws("sqs")
    s3.create_bucket(Bucket="rules-bucket")
    _, dlq_arn = _queue(sqs, "rules-notify-dlq")
    url, arn = _queue(sqs, "rules-notify")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": _policy(arn, "rules-bucket")})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})})
    s3.put_bucket_notification_configuration(Bucket="rules-bucket", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})

    s3.put_object(Bucket="rules-bucket", Key="m.txt", Body=b"x")

    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])]
    keys = [r["s3"]["object"]["key"] for b in bodies for r in b.get("Records", [])]
    assert keys == ["m.txt"]


def test_the_redrive_policy_is_answered_compact_with_a_number_as_aws_answers_it(aws):
    """As in the AWS CLI's examples (aws/aws-cli, awscli/examples/sqs/): set with a string count, answered
    compact with a number. moto's spaced answer made Terraform update every queue with a DLQ on each plan."""
    sqs = aws("sqs")
    _, dlq_arn = _queue(sqs, "compact-dlq")
    url, _ = _queue(sqs, "compact-q")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(
        {"maxReceiveCount": "5", "deadLetterTargetArn": dlq_arn}, indent=2)})

    answered = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["RedrivePolicy"]

    assert answered == '{"deadLetterTargetArn":"%s","maxReceiveCount":5}' % dlq_arn
