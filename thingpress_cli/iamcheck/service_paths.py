"""The IAM requests AWS services make for the stack, as ``make iam-check`` evaluates them.

One job: from the synthesized stack, the requests no function records because a service
makes them: S3 event notifications and EventBridge rules into the encrypted queues,
CloudWatch alarms into the encrypted topic, CloudWatch Logs encrypting each log group,
and Lambda (with each function's role) reading its event source queue and writing its
logs and traces.
"""

from __future__ import annotations

from thingpress_cli.iamcheck import calls as calls_mod
from thingpress_cli.iamcheck.calls import SECURE, Request
from thingpress_cli.iamcheck.stack import Stack


def service_paths(stack: Stack) -> list[Request]:
    p, r, a = stack.partition, stack.region, stack.account
    out: list[Request] = []
    kms_context = {**SECURE, "kms:CallerAccount": a}
    # S3 event notifications -> each queue named in the bucket's notification configuration.
    for note in stack.resources("aws_s3_bucket_notification").values():
        bucket = stack.resolve(note["bucket"])
        for queue in note.get("queue", []):
            arn = stack.resolve(queue["queue_arn"])
            source = {**SECURE, "aws:SourceArn": f"arn:{p}:s3:::{bucket}", "aws:SourceAccount": a}
            out.append(Request("s3.amazonaws.com", "sqs:SendMessage", arn, tuple(sorted(source.items())),
                               "s3 event notification"))
            key = stack.queue_key(arn)
            if key:
                ctx = {**kms_context, "kms:EncryptionContext:aws:sqs:arn": arn}
                out += [Request("s3.amazonaws.com", action, key, tuple(sorted(ctx.items())), "s3 event notification")
                        for action in ("kms:GenerateDataKey", "kms:Decrypt")]
    # CloudWatch alarm actions -> the topic (SSE-KMS).
    for alarm in stack.resources("aws_cloudwatch_metric_alarm").values():
        name = stack.resolve(alarm["alarm_name"])
        for topic in {stack.resolve(t) for t in [*alarm.get("alarm_actions", []), *alarm.get("ok_actions", [])]}:
            source = {**SECURE, "aws:SourceArn": f"arn:{p}:cloudwatch:{r}:{a}:alarm:{name}", "aws:SourceAccount": a}
            out.append(Request("cloudwatch.amazonaws.com", "sns:Publish", topic, tuple(sorted(source.items())),
                               "alarm action"))
            for config in stack.resources("aws_sns_topic").values():
                if topic.endswith(f":{stack.resolve(config['name'])}") and "kms_master_key_id" in config:
                    ctx = {**kms_context, "kms:EncryptionContext:aws:sns:topicArn": topic}
                    out += [Request("cloudwatch.amazonaws.com", action, stack.resolve(config["kms_master_key_id"]),
                                    tuple(sorted(ctx.items())), "alarm action") for action in
                            ("kms:GenerateDataKey", "kms:Decrypt")]
    # EventBridge: each bus encrypted with a key uses it (DescribeKey when the bus is created or updated;
    # GenerateDataKey and Decrypt per event, encryption context the bus ARN), and each rule on it delivers
    # to its SQS targets with aws:SourceArn the rule's ARN (SSE-KMS queues: the queue's key). EventBridge
    # user guide, "Authorizing EventBridge to use a customer managed key", "AWS KMS key policy for event
    # bus" and "Amazon SQS permissions". The DescribeKey request carries no aws:SourceArn: AWS documents
    # none for it (its documented statement has no condition), so a policy must not depend on one.
    for bus in stack.resources("aws_cloudwatch_event_bus").values():
        name = stack.resolve(bus["name"])
        arn = f"arn:{p}:events:{r}:{a}:event-bus/{name}"
        if "kms_key_identifier" in bus:
            key = stack.resolve(bus["kms_key_identifier"])
            out.append(Request("events.amazonaws.com", "kms:DescribeKey", key, tuple(sorted(kms_context.items())),
                               "event bus encryption"))
            source = {**kms_context, "aws:SourceArn": arn, "aws:SourceAccount": a}
            ctx = {**source, "kms:EncryptionContext:aws:events:event-bus:arn": arn}
            out += [Request("events.amazonaws.com", action, key, tuple(sorted(ctx.items())), "event bus encryption")
                    for action in ("kms:GenerateDataKey", "kms:Decrypt")]
    for target in stack.resources("aws_cloudwatch_event_target").values():
        queue = stack.resolve(target["arn"])
        if ":sqs:" not in queue:
            continue
        bus = stack.resolve(target["event_bus_name"]) if "event_bus_name" in target else "default"
        rule = stack.resolve(target["rule"])
        rule_arn = f"arn:{p}:events:{r}:{a}:rule/{rule}" if bus == "default" else f"arn:{p}:events:{r}:{a}:rule/{bus}/{rule}"
        source = {**SECURE, "aws:SourceArn": rule_arn, "aws:SourceAccount": a}
        out.append(Request("events.amazonaws.com", "sqs:SendMessage", queue, tuple(sorted(source.items())),
                           "event rule target"))
        key = stack.queue_key(queue)
        if key:
            ctx = {**kms_context, "kms:EncryptionContext:aws:sqs:arn": queue}
            out += [Request("events.amazonaws.com", action, key, tuple(sorted(ctx.items())), "event rule target")
                    for action in ("kms:GenerateDataKey", "kms:Decrypt")]
    # CloudWatch Logs encrypting each log group with the key.
    for group in stack.resources("aws_cloudwatch_log_group").values():
        if "kms_key_id" in group:
            arn = f"arn:{p}:logs:{r}:{a}:log-group:{stack.resolve(group['name'])}"
            ctx = {**kms_context, "kms:EncryptionContext:aws:logs:arn": arn}
            out += [Request(f"logs.{r}.amazonaws.com", action, stack.resolve(group["kms_key_id"]),
                            tuple(sorted(ctx.items())), "logs encryption")
                    for action in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")]
    # Lambda, with each function's role: the event source mapping, the logs and the traces.
    secure = tuple(sorted(SECURE.items()))
    for fn in stack.functions.values():
        if fn.queue_arn is not None:
            esm = [Request(fn.role_arn, action, fn.queue_arn, secure, "event source mapping")
                   for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")]
            out += esm + calls_mod.kms_on_behalf(esm, stack, r)
        stream = f"{fn.log_group_arn}:log-stream:2026/01/01/[$LATEST]0"
        out += [Request(fn.role_arn, action, stream, secure, "lambda logs")
                for action in ("logs:CreateLogStream", "logs:PutLogEvents")]
        out += [Request(fn.role_arn, action, "*", secure, "lambda tracing")
                for action in ("xray:PutTraceSegments", "xray:PutTelemetryRecords")]
    return out
