"""A queue with its own dead-letter queue, encrypted, TLS-only.

Every SQS write waits in the AWS provider for six matching reads 5 s apart (about 25 s:
``waitQueueAttributesPropagated`` in internal/service/sqs/wait.go, ``ContinuousTargetOccurence: 6``,
``MinTimeout: 5 * time.Second``), the create of a queue and the redrive policy resource alike
(``queueAttributeHandler.Upsert`` in attribute_funcs.go). With the redrive policy inline the queue
could only be created after its DLQ's wait (DLQ 25 s, then queue 25 s, then whatever needs the
queue). As ``aws_sqs_queue_redrive_policy`` the queue and its DLQ are created together and only
the redrive policy waits for both: what needs the queue (functions, notifications, policies) starts
25 s earlier; the event source mapping alone waits for the redrive policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_redrive_policy import SqsQueueRedrivePolicy
from constructs import Construct

from stacks import defaults, iam


@dataclass(frozen=True)
class QueueProps:
    """``name``/``dlq_name``: queue names. ``consumer_timeout``: the consuming function's timeout."""

    name: str
    dlq_name: str
    #: ``arn:<partition>:sqs:<region>:<account>``: the queue policies are set inline at
    #: creation, so they name their own queue by ARN before the queue exists.
    arn_prefix: str
    kms_key_arn: str
    consumer_timeout: int
    max_receive_count: int
    #: None: ``visibility_factor`` x the consumer timeout.
    visibility_timeout: int | None = None
    #: AWS advises 6x the consumer timeout; at least 1x is required.
    visibility_factor: float = defaults.VISIBILITY_FACTOR
    #: bucket ARN allowed to send S3 event notifications (with the account id token).
    s3_source_arn: str | None = None
    source_account: str | None = None
    #: ARN of the EventBridge rule allowed to send its events (its target is this queue).
    event_rule_arn: str | None = None
    retention_seconds: int = defaults.QUEUE_RETENTION_SECONDS


class QueuePair(Construct):
    """``queue`` redrives to ``dlq`` after ``max_receive_count`` receives (the ``redrive`` resource)."""

    def __init__(self, scope: Construct, id_: str, *, props: QueueProps):
        super().__init__(scope, id_)
        visibility = props.visibility_timeout or defaults.visibility_timeout(props.consumer_timeout,
                                                                                 props.visibility_factor)
        errors = []
        if visibility < props.consumer_timeout:
            errors.append(f"queue {props.name}: visibility timeout {visibility}s is below its consumer's "
                          f"timeout {props.consumer_timeout}s (AWS requires at least the function timeout)")
        if visibility > defaults.MAX_VISIBILITY_TIMEOUT:
            errors.append(f"queue {props.name}: visibility timeout {visibility}s is over 12 hours")
        if not 1 <= props.max_receive_count <= 1000:
            errors.append(f"queue {props.name}: maxReceiveCount must be 1..1000")
        if errors:
            raise ValueError("\n".join(errors))
        self.visibility_timeout = visibility
        self.max_receive_count = props.max_receive_count
        queue_arn, dlq_arn = f"{props.arn_prefix}:{props.name}", f"{props.arn_prefix}:{props.dlq_name}"
        statements = [iam.deny_insecure_transport("sqs", queue_arn)]
        if props.s3_source_arn:
            statements.insert(0, iam.statement(
                "S3SendsManifestEvents", ["sqs:SendMessage"], queue_arn,
                principal={"Service": "s3.amazonaws.com"},
                condition={"ArnEquals": {"aws:SourceArn": props.s3_source_arn},
                           "StringEquals": {"aws:SourceAccount": props.source_account}}))
        if props.event_rule_arn:
            statements.insert(0, iam.statement(
                "EventRuleSendsEvents", ["sqs:SendMessage"], queue_arn, principal={"Service": "events.amazonaws.com"},
                condition={"ArnEquals": {"aws:SourceArn": props.event_rule_arn}}))
        # Policies inline (not aws_sqs_queue_policy resources): the AWS provider waits about
        # 25 s for attribute propagation after every SQS resource it writes, so a separate
        # policy resource would add another 25 s step to every deploy.
        self.dlq = SqsQueue(self, "dlq", name=props.dlq_name, kms_master_key_id=props.kms_key_arn,
                            message_retention_seconds=defaults.DLQ_RETENTION_SECONDS,
                            policy=iam.document(iam.deny_insecure_transport("sqs", dlq_arn)))
        self.queue = SqsQueue(
            self, "queue", name=props.name, kms_master_key_id=props.kms_key_arn,
            visibility_timeout_seconds=visibility, message_retention_seconds=props.retention_seconds,
            receive_wait_time_seconds=defaults.RECEIVE_WAIT_SECONDS,
            policy=iam.document(*statements),
        )
        # Not the queue's redrive_policy argument: see the module docstring. SQS refuses a redrive
        # policy naming a DLQ that does not exist, so it names the DLQ by reference (after its create).
        self.redrive = SqsQueueRedrivePolicy(
            self, "redrive", queue_url=self.queue.url,
            # Compact JSON, as SQS returns it: anything else shows as a change on every plan.
            redrive_policy=json.dumps({"deadLetterTargetArn": self.dlq.arn,
                                       "maxReceiveCount": props.max_receive_count}, separators=(",", ":")))
