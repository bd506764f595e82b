"""Alarms with SNS actions (every DLQ non-empty, function errors and throttles,
import queue age, and the metric alarms other constructs ask for, e.g. the
watchdog's ``ManifestsStalled``) on a KMS-encrypted topic, and a CloudWatch dashboard."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from constructs import Construct

from stacks import defaults, iam
from stacks.constructs.context import DeploymentContext
from stacks.constructs.queues import QueuePair


@dataclass(frozen=True)
class MetricAlarmSpec:
    """An alarm another construct asks for: ``metric`` (Sum over the alarm period) above ``threshold``."""

    what: str
    description: str
    namespace: str
    metric: str
    dimensions: Mapping[str, str]
    threshold: float = 0


class NamedFunction(Protocol):
    name: str


class Alarms(Construct):
    """``queues``: key -> pair (a DLQ alarm each); ``functions``: key -> function (errors, throttles);
    ``import_queue``: the key of the import pair (age alarm); ``metric_alarms``: alarms other constructs ask for."""

    def __init__(self, scope: Construct, id_: str, *, ctx: DeploymentContext, kms_key_arn: str,
                 queues: Mapping[str, QueuePair], functions: Mapping[str, NamedFunction], import_queue: str,
                 metric_alarms: Sequence[MetricAlarmSpec] = ()):
        super().__init__(scope, id_)
        names = ctx.names
        self.topic = SnsTopic(self, "topic", name=names.alarm_topic, kms_master_key_id=kms_key_arn)
        SnsTopicPolicy(self, "topic-policy", arn=self.topic.arn, policy=iam.document(
            iam.statement("CloudWatchAlarmsPublish", ["sns:Publish"], self.topic.arn,
                          principal={"Service": "cloudwatch.amazonaws.com"},
                          condition={"ArnLike": {"aws:SourceArn": ctx.arn("cloudwatch", f"alarm:{names.stack}-*")},
                                     "StringEquals": {"aws:SourceAccount": ctx.account_id}}),
            iam.deny_insecure_transport("sns", self.topic.arn)))
        actions = [self.topic.arn]

        def alarm(id_: str, what: str, description: str, namespace: str, metric: str, dimensions: dict[str, str],
                  threshold: float, statistic: str = "Sum") -> None:
            CloudwatchMetricAlarm(
                self, id_, alarm_name=names.alarm(what), alarm_description=description, namespace=namespace,
                metric_name=metric, dimensions=dimensions, statistic=statistic,
                period=defaults.ALARM_PERIOD_SECONDS, evaluation_periods=1, threshold=threshold,
                comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
                alarm_actions=actions, ok_actions=actions)

        for key, pair in queues.items():
            alarm(f"{key}-dlq", f"{key}-dlq-not-empty", f"{key} dead-letter queue holds messages", "AWS/SQS",
                  "ApproximateNumberOfMessagesVisible", {"QueueName": pair.dlq.name}, 0, "Maximum")
        for key, fn in functions.items():
            slug = key.replace("_", "-")
            alarm(f"{key}-errors", f"{slug}-errors", f"{key} function errors", "AWS/Lambda", "Errors",
                  {"FunctionName": fn.name}, 0)
            alarm(f"{key}-throttles", f"{slug}-throttles", f"{key} function throttles", "AWS/Lambda", "Throttles",
                  {"FunctionName": fn.name}, 0)
        alarm("import-age", "import-queue-age",
              f"oldest import message older than {defaults.IMPORT_AGE_ALARM_SECONDS}s", "AWS/SQS",
              "ApproximateAgeOfOldestMessage", {"QueueName": queues[import_queue].queue.name},
              defaults.IMPORT_AGE_ALARM_SECONDS, "Maximum")
        for spec in metric_alarms:
            alarm(spec.what, spec.what, spec.description, spec.namespace, spec.metric, dict(spec.dimensions),
                  spec.threshold)

        region = ctx.region

        def widget(title: str, metrics: list[list[str]], y: int, x: int = 0) -> dict:
            return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
                    "properties": {"title": title, "region": region, "stat": "Sum", "period": 60,
                                   "metrics": metrics}}

        fn_names = [fn.name for fn in functions.values()]
        body = {"widgets": [
            widget("Function invocations", [["AWS/Lambda", "Invocations", "FunctionName", n] for n in fn_names], 0),
            widget("Function errors and throttles",
                   [["AWS/Lambda", m, "FunctionName", n] for n in fn_names for m in ("Errors", "Throttles")], 0, 12),
            widget("Queue depth", [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", p.queue.name]
                                   for p in queues.values()], 6),
            widget("Dead-letter queues", [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", p.dlq.name]
                                          for p in queues.values()], 6, 12),
        ]}
        self.dashboard = CloudwatchDashboard(self, "dashboard", dashboard_name=names.dashboard,
                                             dashboard_body=json.dumps(body, separators=(",", ":")))
