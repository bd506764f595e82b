"""Deliveries AWS services make on the stack's behalf, refused as AWS refuses them.

moto delivers whatever the policies say. AWS delivers only when the target's
resource policy lets the service principal send *and*, for a target encrypted with a
customer managed key, the key policy lets the same principal use the key (the
principal is the service: no identity policy can grant it). Each path is judged
here, on moto's state, with the request context ``make iam-check`` models for it
(``thingpress_cli/iamcheck/service_paths.py``):

* **EventBridge rule -> SQS queue** (:func:`rule_may_deliver`). The bus's key first:
  "EventBridge requires [kms:GenerateDataKey and kms:Decrypt] ... EventBridge uses
  this for event pattern matching", encryption context the bus ARN (EventBridge user
  guide, "Encrypting events with AWS KMS keys",
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-encryption-event-bus-cmkey.html;
  an event that fails encryption or decryption goes to the bus's dead-letter queue,
  never to a target). Then the queue policy: ``events.amazonaws.com``
  ``sqs:SendMessage``, ``aws:SourceArn`` the rule ("Amazon SQS permissions",
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions).
  Then the queue's key.
* **S3 event notification -> SQS queue** (:func:`s3_may_notify`): the queue policy
  lets ``s3.amazonaws.com`` send (``aws:SourceArn`` the bucket, ``aws:SourceAccount``
  its owner) and the queue's key lets it use the key (S3 user guide, "Granting
  permissions to publish event notification messages to a destination",
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/grant-destinations-permissions-to-s3.html).
* **CloudWatch alarm action -> SNS topic** (:func:`alarm_may_publish`): the topic
  policy lets ``cloudwatch.amazonaws.com`` publish (``aws:SourceArn`` the alarm) and
  the topic's key lets it use the key. moto runs no alarm action at all;
  :func:`alarm_actions_as_aws` runs them as ``SetAlarmState`` documents: "When the
  updated state differs from the previous value, the action configured for the
  appropriate state is invoked"
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html).

SSE-KMS: a producer needs ``kms:GenerateDataKey`` and ``kms:Decrypt`` on the queue's
or topic's key, with the encryption context ``aws:sqs:arn`` / ``aws:sns:topicArn``
(SQS developer guide, "Amazon SQS key management"; SNS developer guide, "Encryption
at rest"). A refused delivery is dropped with a warning, as AWS drops it (a failed
invocation, a ``FailedInvocations`` metric, nothing in the target).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from thingpress_cli.local.emulator.guard import Patched
from thingpress_cli.local.emulator.iam_conditions import decision

logger = logging.getLogger(__name__)

#: Every SDK call, and every service-to-service call, is made over TLS.
SECURE_CONTEXT = {"aws:SecureTransport": "true"}
EVENTS = "events.amazonaws.com"
S3 = "s3.amazonaws.com"
CLOUDWATCH = "cloudwatch.amazonaws.com"
#: What a producer to an SSE-KMS queue or topic does with its key.
PRODUCER_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
#: What :func:`install` wraps (and relies on), with moto's parameters (:data:`.patches.PATCHED` includes them).
PATCHED = (
    Patched("moto.events.models", "Rule._send_to_sqs_queue", ("self", "resource_id", "event", "group_id")),
    Patched("moto.events.models", "Rule.arn"),
    Patched("moto.s3.notifications", "_send_sqs_message", ("account_id", "event_body", "queue_name", "region_name")),
    Patched("moto.cloudwatch.models", "CloudWatchBackend.set_alarm_state",
            ("self", "alarm_name", "reason", "reason_data", "state_value")),
)


def service_may(service: str, action: str, resource: str, policy: str | bytes | Mapping[str, Any] | None,
                context: Mapping[str, str]) -> bool:
    """Whether a resource policy lets the AWS ``service`` principal do ``action`` on ``resource``."""
    return decision([policy], action=action, resource=resource, context=context,
                    principal={"Service": service}) == "Allow"


def key_refusal(service: str, key_id: str | None, account: str, region: str,
                context: Mapping[str, str]) -> str | None:
    """Why the customer managed key ``key_id`` refuses ``service`` the producer's actions; None if it
    does not (or there is no key). A key the service cannot find or that is not enabled refuses too."""
    if not key_id:
        return None
    from moto.kms.models import kms_backends

    backend = kms_backends[account][region]
    try:
        key = backend.keys[backend.any_id_to_key_id(key_id)]
    except (KeyError, TypeError, AttributeError):
        return f"KMS key {key_id} not found"
    if key.key_state != "Enabled":
        return f"KMS key {key.arn} is {key.key_state}"
    ctx = {**SECURE_CONTEXT, "kms:CallerAccount": account, **context}
    for action in PRODUCER_KEY_ACTIONS:
        if decision([key.policy], action=action, resource=key.arn, context=ctx,
                    principal={"Service": service}) != "Allow":
            return f"the key policy of {key.arn} does not allow {service} {action}"
    return None


def _queue(account: str, region: str, name: str) -> Any:
    from moto.sqs.models import sqs_backends

    return sqs_backends[account][region].get_queue(name)


def queue_refusal(service: str, queue: Any, account: str, region: str, source: Mapping[str, str]) -> str | None:
    """Why ``queue`` refuses ``service``'s message sent with the ``source`` context keys; None if it takes it."""
    context = {**SECURE_CONTEXT, **source}
    if not service_may(service, "sqs:SendMessage", queue.queue_arn, queue.policy, context):
        return f"the policy of queue {queue.queue_arn} does not allow {service} sqs:SendMessage"
    return key_refusal(service, queue.kms_master_key_id, account, region,
                       {"kms:EncryptionContext:aws:sqs:arn": queue.queue_arn})


def rule_may_deliver(rule: Any, queue_name: str) -> str | None:
    """Why EventBridge cannot deliver ``rule``'s event to the queue ``queue_name``; None if it can."""
    from moto.events.models import events_backends

    account, region = rule.account_id, rule.region_name
    bus = events_backends[account][region].event_buses.get(rule.event_bus_name)
    if bus is not None and bus.kms_key_identifier:
        refusal = key_refusal(EVENTS, bus.kms_key_identifier, account, region, {
            "aws:SourceArn": bus.arn, "aws:SourceAccount": account,
            "kms:EncryptionContext:aws:events:event-bus:arn": bus.arn})
        if refusal:
            return f"event bus {bus.arn}: {refusal}"
    return queue_refusal(EVENTS, _queue(account, region, queue_name), account, region,
                         {"aws:SourceArn": rule.arn, "aws:SourceAccount": account})


def s3_may_notify(account: str, region: str, queue_name: str, event_body: Mapping[str, Any]) -> str | None:
    """Why S3 cannot deliver ``event_body`` to the queue ``queue_name``; None if it can."""
    records = event_body.get("Records") or [{}]
    # An event record names its bucket in s3.bucket; the s3:TestEvent sent when the configuration
    # is set, at the top (``Bucket``).
    name = records[0].get("s3", {}).get("bucket", {}).get("name") or event_body.get("Bucket", "")
    source = {"aws:SourceArn": f"arn:aws:s3:::{name}", "aws:SourceAccount": account}
    return queue_refusal(S3, _queue(account, region, queue_name), account, region, source)


def alarm_may_publish(alarm_arn: str, topic: Any, account: str, region: str) -> str | None:
    """Why CloudWatch cannot publish ``alarm_arn``'s action to ``topic``; None if it can."""
    context = {**SECURE_CONTEXT, "aws:SourceArn": alarm_arn, "aws:SourceAccount": account}
    if not service_may(CLOUDWATCH, "sns:Publish", topic.arn, topic.policy, context):
        return f"the policy of topic {topic.arn} does not allow {CLOUDWATCH} sns:Publish"
    return key_refusal(CLOUDWATCH, topic.kms_master_key_id, account, region,
                       {"kms:EncryptionContext:aws:sns:topicArn": topic.arn})


# ----------------------------------------------------------------- the hooks install() puts on moto


def deliver_rule_as_aws(send_to_sqs_queue: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``Rule._send_to_sqs_queue``, only when the bus key, the queue policy and the queue key allow it."""
    @functools.wraps(send_to_sqs_queue)
    def send(self: Any, resource_id: str, event: dict[str, Any], group_id: str | None = None) -> None:
        refusal = rule_may_deliver(self, resource_id)
        if refusal:
            logger.warning("rule %s: event dropped: %s", self.arn, refusal)
            return
        send_to_sqs_queue(self, resource_id, event, group_id)
    return send


def notify_as_aws(send_sqs_message: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``s3.notifications._send_sqs_message``, only when the queue policy and the queue key allow it."""
    @functools.wraps(send_sqs_message)
    def send(account_id: str, event_body: Any, queue_name: str, region_name: str) -> None:
        try:
            refusal = s3_may_notify(account_id, region_name, queue_name, event_body)
        except Exception:  # noqa: BLE001 - no such queue: moto's own send swallows that too (S3 delivers asynchronously)
            refusal = None
        if refusal:
            logger.warning("s3 event notification to %s dropped: %s", queue_name, refusal)
            return
        send_sqs_message(account_id, event_body, queue_name, region_name)
    return send


def alarm_actions_as_aws(set_alarm_state: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``CloudWatchBackend.set_alarm_state``, then the new state's SNS actions, each judged first."""
    @functools.wraps(set_alarm_state)
    def set_state(self: Any, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        alarm = self.alarms.get(alarm_name)
        before = alarm.state_value if alarm is not None else None
        set_alarm_state(self, alarm_name, reason, reason_data, state_value)
        alarm = self.alarms[alarm_name]
        if before == state_value or not alarm.actions_enabled:
            return
        actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions,
                   "INSUFFICIENT_DATA": alarm.insufficient_data_actions}[state_value]
        for arn in actions or []:
            if ":sns:" in arn:
                _publish_alarm(self, alarm, arn, before, reason)
    return set_state


def _publish_alarm(backend: Any, alarm: Any, topic_arn: str, before: str | None, reason: str) -> None:
    from moto.sns.models import sns_backends

    account, region = backend.account_id, backend.region_name
    sns = sns_backends[account][region]
    topic = sns.topics.get(topic_arn)
    if topic is None:
        logger.warning("alarm %s: topic %s does not exist; action dropped", alarm.alarm_arn, topic_arn)
        return
    refusal = alarm_may_publish(alarm.alarm_arn, topic, account, region)
    if refusal:
        logger.warning("alarm %s: action dropped: %s", alarm.alarm_arn, refusal)
        return
    # The message CloudWatch publishes (its fields as the CloudWatch user guide's alarm notifications show).
    message = {"AlarmName": alarm.name, "AlarmDescription": alarm.description, "AWSAccountId": account,
               "AlarmArn": alarm.alarm_arn, "NewStateValue": alarm.state_value, "NewStateReason": reason,
               "OldStateValue": before, "Region": region}
    sns.publish(arn=topic_arn, message=json.dumps(message),
                subject=f'{alarm.state_value}: "{alarm.name}" in {region}'[:100])


def install() -> None:
    """Judge every EventBridge rule delivery, S3 event notification and CloudWatch alarm action as AWS does."""
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.events.models import Rule as EventsRule
    from moto.s3 import notifications as s3_notifications

    EventsRule._send_to_sqs_queue = deliver_rule_as_aws(EventsRule._send_to_sqs_queue)  # type: ignore[method-assign]
    s3_notifications._send_sqs_message = notify_as_aws(s3_notifications._send_sqs_message)
    CloudWatchBackend.set_alarm_state = alarm_actions_as_aws(CloudWatchBackend.set_alarm_state)  # type: ignore[method-assign]
