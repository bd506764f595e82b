"""The completion events: the deployment's own EventBridge bus, and a queue that receives them.

The functions that can complete a manifest (importer, providers, watchdog) put one
``Manifest Completed`` event (source ``thingpress``, see ``thingpress.events``) on
:attr:`CompletionEvents.bus`. Other systems add their own rules on that bus. The
construct also creates one ready subscription: a rule on the bus matching exactly
that source and detail-type, whose target is :attr:`CompletionEvents.queue`
(customer-managed KMS, TLS only, only this rule may send). It is created for every
target, not only the local one, so the local deployment's integration test reads
the very resources an AWS deployment ships; a queue nobody reads costs nothing (SQS
bills requests) and keeps the events ``retention_seconds`` for a consumer that
polls instead of adding a rule. The stack's own consumer, the results writer, has a rule
of its own on the bus (:mod:`stacks.constructs.results`, the same :func:`completion_pattern`).

A dedicated bus, not the account's default: the functions' ``events:PutEvents`` is
scoped to a bus this deployment owns (and an ``events:source`` condition), two
environments in one account never see each other's events, and the bus is
encrypted with the deployment key (the key policy lets EventBridge use it for this
bus only: stacks/constructs/kms.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_event_bus import CloudwatchEventBus
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from constructs import Construct
from thingpress import events

from stacks import defaults, iam
from stacks.constructs.context import DeploymentContext

#: the target id of the completion queue on the completion rule.
QUEUE_TARGET_ID = "completion-queue"


def bus_arn(ctx: DeploymentContext) -> str:
    """The ARN of the deployment's bus, built from its name (the key policy names it before it exists)."""
    return ctx.arn("events", f"event-bus/{ctx.names.event_bus}")


def rule_arn_on_bus(ctx: DeploymentContext, rule: str) -> str:
    """The ARN of rule ``rule`` on the deployment's bus (a queue policy names it before it exists)."""
    return ctx.arn("events", f"rule/{ctx.names.event_bus}/{rule}")


def completion_pattern() -> str:
    """The event pattern of a rule on the bus matching exactly the completion event (``thingpress.events``)."""
    return json.dumps({"source": [events.SOURCE], "detail-type": [events.MANIFEST_COMPLETED]}, separators=(",", ":"))


@dataclass(frozen=True)
class CompletionEventsProps:
    #: the deployment key (bus and queue encryption).
    kms_key_arn: str
    #: how long the completion queue keeps an event nobody received.
    retention_seconds: int = defaults.QUEUE_RETENTION_SECONDS


class CompletionEvents(Construct):
    """Bus (KMS) + rule on ``source`` thingpress / ``Manifest Completed`` + encrypted, TLS-only target queue."""

    def __init__(self, scope: Construct, id_: str, *, ctx: DeploymentContext, props: CompletionEventsProps):
        super().__init__(scope, id_)
        names = ctx.names
        self.bus = CloudwatchEventBus(self, "bus", name=names.event_bus, kms_key_identifier=props.kms_key_arn)
        self.bus_name = names.event_bus
        self.bus_arn = bus_arn(ctx)
        self.rule = CloudwatchEventRule(
            self, "rule", name=names.completion_rule, event_bus_name=self.bus.name,
            description="Copies thingpress completion events to the completion queue",
            event_pattern=completion_pattern())
        rule_arn = rule_arn_on_bus(ctx, names.completion_rule)
        queue_arn = ctx.arn("sqs", names.completion_queue)
        self.queue = SqsQueue(
            self, "queue", name=names.completion_queue, kms_master_key_id=props.kms_key_arn,
            message_retention_seconds=props.retention_seconds,
            policy=iam.document(
                iam.statement("CompletionRuleSendsEvents", ["sqs:SendMessage"], queue_arn,
                              principal={"Service": "events.amazonaws.com"},
                              condition={"ArnEquals": {"aws:SourceArn": rule_arn}}),
                iam.deny_insecure_transport("sqs", queue_arn)))
        CloudwatchEventTarget(self, "target", rule=self.rule.name, event_bus_name=self.bus.name,
                              target_id=QUEUE_TARGET_ID, arn=self.queue.arn)

    def put_statement(self, sid: str = "PutCompletionEvent") -> dict:
        """The identity-policy statement of a function that puts the completion event (this bus, this source).

        ``sid``: the importer's ``PutCompletionEvent`` must be exercised by a local run (``make iam-check``);
        ``PutCompletionEventIfLastToFinish`` (providers, watchdog) completes a manifest only in the cases
        thingpress_cli/iamcheck/excuses.py's ``UNEXERCISED`` names.
        """
        # events:source and events:detail-type are multivalued (ArrayOfString in the service authorization
        # reference: one value per entry of the PutEvents call), so ForAllValues; and Null false, because
        # ForAllValues alone holds for a request without the key.
        return iam.statement(sid, ["events:PutEvents"], self.bus_arn, condition={
            "ForAllValues:StringEquals": {"events:source": events.SOURCE, "events:detail-type": events.MANIFEST_COMPLETED},
            "Null": {"events:source": "false", "events:detail-type": "false"}})
