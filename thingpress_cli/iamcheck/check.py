"""``make iam-check``: the recorded calls and the service paths against the synthesized policies.

1. Every call the local runner recorded (``build/local/calls/<function>.jsonl``) becomes
   the IAM requests AWS authorizes for it (:mod:`.calls`), SSE-KMS included.
2. The calls AWS makes for the stack are added (:func:`service_paths`): S3 event
   notifications into the encrypted manifest queues, CloudWatch alarms into the
   encrypted topic, CloudWatch Logs encrypting each function's log group, each event
   source mapping reading its queue with the function's role, and Lambda writing
   the function's logs and traces with it.
3. ``@cloud-copilot/iam-simulate`` evaluates each distinct request against the
   principal's identity policy (the function's role policy; none for a service)
   and the resource's policy (key, queue, bucket or topic policy). It validates
   the request (action, resource type, condition keys) first; see simulate.mjs for
   the one key form (``kms:EncryptionContext:<key>``) version 0.1.173 drops.
4. Static checks over every policy of the stack: each resource ARN names a resource
   type of each action of its statement (an ARN IAM ignores is an error), each
   condition key exists for the statement's actions, and each granted action is
   exercised by a request or excused in :data:`UNEXERCISED` (by holder, statement and action)
   with its reason.

The last line printed is the summary; the exit status is 1 on any finding.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks.naming import FUNCTION_KEYS, LIFECYCLE, RESULTS, VENDORS, provider_key
from thingpress_cli.core.toolchain import REPO
from thingpress_cli.iamcheck import calls as calls_mod
from thingpress_cli.iamcheck.calls import SECURE, Request
from thingpress_cli.iamcheck.data import IamData
from thingpress_cli.iamcheck.stack import Stack, load
from thingpress_cli.local import state

SIMULATOR = Path(__file__).resolve().parent / "simulate.mjs"
NODE = REPO / "node_modules" / ".bin" / "node"
CALLS_DIR = state.LOCAL_DIR / "calls"

#: A policy variable in a resource (``${iot:Connection.Thing.ThingName}``): one path segment.
POLICY_VARIABLE = re.compile(r"\$\{[^}]+\}")
#: Condition keys of AWS IoT Core policies (devices), not of IAM: the IoT developer guide,
#: "Thing policy variables" (``iot:Connection.Thing.IsAttached``).
IOT_POLICY_KEYS = ("iot:Connection.",)
#: Who holds a role's grants: the function key (``stacks.naming.FUNCTION_KEYS``: ``importer``,
#: ``provider_<vendor>``, ``watchdog``, ``results``); the stack's key policy: ``key``.
KEY = "key"
PROVIDERS = tuple(provider_key(vendor) for vendor in VENDORS)
#: Every action of the statement (only for a statement whose whole purpose is one reason).
EVERY_ACTION = "*"


@dataclass(frozen=True)
class Excuse:
    """Grants that no recorded call or service path exercises, and why: statement ``sid``'s ``actions``
    held by each of ``holders``. Keyed by holder, statement and action, so a reason excuses exactly
    the grants it names, never the same statement on another role."""

    holders: tuple[str, ...]
    sid: str
    actions: tuple[str, ...]
    reason: str

    def keys(self) -> set[tuple[str, str, str]]:
        return {(holder, self.sid, action) for holder in self.holders for action in self.actions}


#: Granted actions no recorded call or service path exercises, each with its reason: the one list,
#: one entry per reason.
UNEXERCISED: tuple[Excuse, ...] = (
    Excuse((KEY,), "AccountAdministersAndUsesKeyThroughIam", (EVERY_ACTION,),
           "the key policy's delegation to the account: who may use the key is decided by IAM policies "
           "(the role policies checked here); without it the key would be unmanageable"),
    Excuse((KEY,), "CloudWatchLogsEncryptsThisDeploymentsLogGroups",
           ("kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKeyWithoutPlaintext"),
           "AWS's documented key policy for CloudWatch Logs (Encrypt*, Decrypt*, ReEncrypt*, GenerateDataKey*, "
           "Describe*): Logs re-encrypts on key rotation"),
    Excuse(PROVIDERS, "RecordManifests", ("dynamodb:GetItem",),
           "one provider code path for every vendor: a claim refused without the stored row returned is read "
           "(AuditTable._claimed_position); a run records it only where that happens"),
    Excuse(PROVIDERS, "RecordManifests", ("dynamodb:BatchWriteItem",),
           "one provider code path for every vendor: refused entries are batch-written (AuditLog.put_refusals); "
           "the sample manifests of some vendors have none"),
    Excuse(("importer",), "RecordOutcomes", ("dynamodb:GetItem",),
           "the importer reads a certificate's row when its conditional write finds one "
           "(AuditTable.get_outcome): redeliveries and races, which a run has or has not"),
    Excuse((RESULTS,), "WriteResultsFiles", ("s3:AbortMultipartUpload",),
           "the results writer aborts a multipart upload only when a write fails or finds its file written "
           "already (a redelivered event; thingpress.results.writer), and uploads in parts only past 8 MiB, "
           "which a local run's manifests never reach"),
    Excuse((LIFECYCLE,), "WriteJobResultsFiles", ("s3:AbortMultipartUpload",),
           "the lifecycle function writes a job's results files as the results writer does (StreamedObject): "
           "it aborts a multipart upload only when a write fails or finds its file written already, and uploads "
           "in parts only past 8 MiB, which a local run's lists never reach"),
    Excuse(PROVIDERS, "PutCompletionEventIfLastToFinish", ("events:PutEvents",),
           "a provider completes a manifest only when nothing is outstanding at its last checkpoint (every entry "
           "refused or a duplicate) or when it finds a parsed manifest whose completer died: a vendor's run has "
           "these or not (the importer's and the watchdog's grants must be exercised)"),
)


@dataclass
class Report:
    requests: list[Request] = field(default_factory=list)
    paths: list[Request] = field(default_factory=list)
    denied: list[tuple[Request, str]] = field(default_factory=list)
    denied_paths: list[tuple[Request, str]] = field(default_factory=list)
    ignored_arns: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    #: grants never exercised that an :data:`UNEXERCISED` entry excuses: (holder, statement, action).
    excused: list[tuple[str, str, str]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    per_function: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.denied or self.denied_paths or self.ignored_arns or self.unknown or self.unused)

    def summary(self) -> str:
        return (f"iam-check: calls {len({r.triple for r in self.requests})}, denied {len(self.denied)}, "
                f"service paths {len({r.triple for r in self.paths})} denied {len(self.denied_paths)}, "
                f"ignored ARNs {len(self.ignored_arns)}, unexplained unused grants {len(self.unused)}, "
                f"excused unused grants {len(self.excused)}")


# ----------------------------------------------------------------- the calls AWS makes for the stack

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


# ----------------------------------------------------------------- evaluation

def resource_policy(stack: Stack, request: Request) -> dict[str, Any] | None:
    service = request.action.split(":", 1)[0]
    if service == "kms":
        return stack.key_policy(request.resource)
    if service == "sqs":
        return stack.queue_policy(request.resource)
    if service == "s3":
        return stack.bucket_policy(request.resource.split(":::", 1)[1].split("/", 1)[0])
    if service == "sns":
        return stack.topic_policy(request.resource)
    return None


def simulate(stack: Stack, requests: list[Request]) -> tuple[list[str], dict[str, str]]:
    roles = {fn.role_arn: fn.policy for fn in stack.functions.values()}
    simulations = []
    for request in requests:
        identity = roles.get(request.principal)
        sim: dict[str, Any] = {
            "request": {"principal": request.principal, "action": request.action,
                        "resource": {"resource": request.resource, "accountId": stack.account},
                        "contextVariables": dict(request.context)},
            "identityPolicies": [{"name": "role", "policy": identity}] if identity else [],
            "serviceControlPolicies": [], "resourceControlPolicies": [],
        }
        policy = resource_policy(stack, request)
        if policy is not None:
            sim["resourcePolicy"] = policy
        simulations.append(sim)
    answer = subprocess.run([str(NODE), str(SIMULATOR)], input=json.dumps({"simulations": simulations}),
                            capture_output=True, text=True, check=False, cwd=REPO)
    if answer.returncode != 0:
        raise RuntimeError(f"{SIMULATOR.name} failed (exit {answer.returncode}): {answer.stderr.strip()}")
    out = json.loads(answer.stdout)
    return [r["result"] if r["result"] != "Error" else f"Error {json.dumps(r['detail'])}" for r in out["results"]], \
        out["versions"]


# ----------------------------------------------------------------- static checks

def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _holder(policy_name: str) -> str:
    """Who holds a policy's grants, as :class:`Excuse` names them (the policy's name when no rule applies)."""
    if policy_name.startswith("aws_kms_key "):
        return KEY
    if policy_name.startswith("role "):
        role = policy_name.split(" ", 1)[1]
        for function in FUNCTION_KEYS:
            if role.endswith(f"-{function.replace('_', '-')}-role"):
                return function
    return policy_name


def static_checks(stack: Stack, data: IamData, exercised: set[tuple[str, str]], report: Report) -> None:
    roles = {fn.role_arn.rsplit("/", 1)[-1]: fn.role_arn for fn in stack.functions.values()}
    excused = {key for excuse in UNEXERCISED for key in excuse.keys()}
    for name, policy in stack.policies().items():
        for st in _listed(policy["Statement"]):
            sid = st.get("Sid", "?")
            actions = [a for a in _listed(st["Action"]) if "*" not in a]  # Deny: service wildcards
            resources = [stack.resolve(r) for r in _listed(st.get("Resource", "*"))]
            keys = [k for op in st.get("Condition", {}).values() for k in op]
            for key in actions:
                action = data.action(key)
                if action is None:
                    report.unknown.append(f"{name} {sid}: {key} is no IAM action")
                    continue
                for arn in resources:
                    if arn == "*":
                        continue
                    if not action.resource_types or action.resource_type_of(POLICY_VARIABLE.sub("x", arn)) is None:
                        report.ignored_arns.append(
                            f"{name} {sid}: {key} ignores {arn} (its resource types: "
                            f"{[t.name for t in action.resource_types] or 'none: Resource must be *'})")
                for condition_key in keys:
                    if name.startswith("aws_iot_policy") and condition_key.startswith(IOT_POLICY_KEYS):
                        continue
                    if not action.allows_condition_key(condition_key):
                        report.unknown.append(f"{name} {sid}: condition key {condition_key} does not exist for {key}")
            if st["Effect"] != "Allow" or name.startswith("aws_iot_policy"):
                continue  # device policies are exercised by devices
            principal = st.get("Principal")
            if name.startswith("role "):
                who = [roles.get(name.split(" ", 1)[1], name)]
            elif isinstance(principal, dict) and "Service" in principal:
                who = _listed(principal["Service"])
            else:
                who = ["account"]
            holder = _holder(name)
            for key in actions:
                if any((w, key) in exercised for w in who):
                    continue
                if {(holder, sid, key), (holder, sid, EVERY_ACTION)} & excused:
                    report.excused.append((holder, sid, key))
                    continue
                report.unused.append(f"{name} {sid}: {key} is granted to {', '.join(who)} and never exercised")


def run(stack_file: Path, calls_dir: Path, account: str = state.ACCOUNT_ID, out=sys.stdout,
        only_own: bool = False, judge_unused: bool = True) -> Report:
    """Evaluate the recorded calls against ``stack_file``; ``only_own``: ignore other stacks' functions' calls;
    ``judge_unused``: report grants never exercised (only for an environment the whole suite ran against)."""
    data = IamData()
    stack = load(stack_file, account)
    report = Report()
    principals = {fn.name: fn.role_arn for fn in stack.functions.values()}
    recorded = calls_mod.load_calls(calls_dir)
    if only_own:
        recorded = [call for call in recorded if call.function in principals]
    for call in recorded:
        if call.function not in principals:
            raise SystemExit(f"{calls_dir / (call.function + '.jsonl')}: no function {call.function} in {stack_file}")
        try:
            report.requests += calls_mod.requests_for(call, principals[call.function], data, stack)
        except calls_mod.Unmappable as error:  # a finding, like a denial: the data set cannot place the call
            report.unknown.append(str(error))
    report.paths = service_paths(stack)
    distinct = sorted({*report.requests, *report.paths}, key=lambda r: (r.principal, r.action, r.resource, r.context))
    results, report.versions = simulate(stack, distinct)
    verdict = dict(zip(distinct, results))
    path_set = set(report.paths)
    for request in distinct:
        if verdict[request] != "Allowed":
            (report.denied_paths if request in path_set else report.denied).append((request, verdict[request]))
    by_function: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    role_to_fn = {v: k for k, v in principals.items()}
    for request in report.requests:
        by_function[role_to_fn[request.principal]].add(request.triple)
    report.per_function = {k: len(v) for k, v in sorted(by_function.items())}
    exercised = {(r.principal, r.action) for r in distinct if verdict[r] == "Allowed"}
    static_checks(stack, data, exercised, report)
    if not judge_unused:
        report.unused = []
    _print(report, len(recorded), out)
    return report


def _print(report: Report, calls: int, out) -> None:
    versions = ", ".join(f"{k} {v}" for k, v in sorted(report.versions.items()))
    print(f"iam-check: {calls} recorded calls; evaluator and data: {versions}", file=out)
    for fn, count in report.per_function.items():
        print(f"  {fn}: {count} (role, action, resource)", file=out)
    for request, verdict in [*report.denied, *report.denied_paths]:
        print(f"DENIED {verdict}: {request.principal} {request.action} {request.resource} ({request.origin}; "
              f"context {dict(request.context)})", file=out)
    for line in report.ignored_arns:
        print(f"IGNORED ARN: {line}", file=out)
    for line in report.unknown:
        print(f"UNKNOWN: {line}", file=out)
    for line in report.unused:
        print(f"UNUSED: {line}", file=out)
    print(report.summary(), file=out)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thingpress_cli.iamcheck", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", type=Path, action="append",
                        help="a synthesized cdk.tf.json (repeatable; default: every locally deployed environment's, "
                             "each judging the calls of its own functions)")
    parser.add_argument("--calls", type=Path, default=CALLS_DIR)
    parser.add_argument("--account", default=os.environ.get("THINGPRESS_IAM_CHECK_ACCOUNT", state.ACCOUNT_ID))
    args = parser.parse_args(list(argv) if argv is not None else None)
    # By default every locally synthesized environment whose functions recorded calls (a stale
    # synthesis of an environment destroyed earlier has none).
    stacks = args.stack or [path for path in sorted(REPO.glob("cdktf.out.*/stacks/thingpress-*/cdk.tf.json"))
                            if any(args.calls.glob(f"{path.parent.name}-*.jsonl"))]
    missing = [path for path in stacks if not path.is_file()]
    if not stacks or missing:
        print(f"iam-check: no synthesized local stack ({', '.join(map(str, missing)) or 'cdktf.out.<env>/'}): "
              "deploy locally first (`thingpress local up`)", file=sys.stderr)
        return 2
    if not any(args.calls.glob("*.jsonl")):
        print(f"iam-check: no recorded calls in {args.calls}: run the integration tests on a local deployment",
              file=sys.stderr)
        return 2
    # Unused grants are judged on the local environment only: the whole suite runs against it, while
    # another environment (tests/environments' pr7) imports a manifest or two and is destroyed.
    from stacks.naming import DEFAULT_ENV
    from thingpress_cli.local.deployments import stack_name

    primary = stack_name(DEFAULT_ENV)
    reports = [run(path, args.calls, args.account, only_own=len(stacks) > 1,
                   judge_unused=len(stacks) == 1 or path.parent.name == primary) for path in stacks]
    return 0 if all(report.ok for report in reports) else 1
