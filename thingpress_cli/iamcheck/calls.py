"""Recorded AWS calls -> the IAM requests AWS authorizes for them.

The action of an operation is ``<service>:<Operation>`` whenever the
authorization data knows that action; the few operations that IAM authorizes as
other actions are listed once, in :data:`RULES`. Each request's resources are the
ARNs built from the call's parameters, kept only where the data set lists a
resource type of that action that matches them (so a call is evaluated on exactly
the resources IAM evaluates it on). The SSE-KMS requests a service makes on the
caller's behalf are added by :func:`kms_on_behalf`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from thingpress_cli.iamcheck.data import IamData
from thingpress_cli.iamcheck.stack import Stack

#: The transport every SDK call uses on AWS.
SECURE = {"aws:SecureTransport": "true"}


@dataclass(frozen=True)
class Request:
    """One IAM authorization: ``principal`` does ``action`` on ``resource``."""

    principal: str
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    #: what made it: "call <Operation>", "sse <service>", or a service path's name.
    origin: str = ""

    @property
    def triple(self) -> tuple[str, str, str]:
        return (self.principal, self.action, self.resource)


@dataclass(frozen=True)
class Call:
    function: str
    service: str
    operation: str
    region: str
    params: dict[str, Any] = field(hash=False)


# ----------------------------------------------------------------- operations IAM authorizes as other actions

def _transact_items(call: Call) -> Iterator[tuple[str, dict[str, Any]]]:
    kinds = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
             "ConditionCheck": "dynamodb:ConditionCheckItem", "Get": "dynamodb:GetItem"}
    for item in call.params.get("TransactItems", []):
        for kind, body in item.items():
            yield kinds[kind], body


def _batch_write(call: Call) -> Iterator[tuple[str, dict[str, Any]]]:
    for table in call.params.get("RequestItems", {}):
        yield "dynamodb:BatchWriteItem", {"TableName": table}


def _get_object(call: Call) -> Iterator[tuple[str, dict[str, Any]]]:
    yield ("s3:GetObjectVersion" if call.params.get("VersionId") else "s3:GetObject"), call.params


def _put_events(call: Call) -> Iterator[tuple[str, dict[str, Any]]]:
    # One request per entry: each names its bus (the default bus when absent) and its source.
    for entry in call.params.get("Entries", []):
        yield "events:PutEvents", {"EventBusName": entry.get("EventBusName") or "default",
                                   "Source": entry.get("Source", ""), "DetailType": entry.get("DetailType", "")}


#: (service, operation) -> the (action, parameters of the resource) pairs IAM authorizes it as.
#: SQS batch operations: "authorized as the single-message action" (SQS API reference, each *Batch page);
#: DynamoDB transactions: each item's own action (DynamoDB developer guide, "IAM with transactions");
#: S3 GetObject/HeadObject with a versionId: s3:GetObjectVersion; ListObjectsV2: s3:ListBucket; a multipart
#: upload's CreateMultipartUpload, UploadPart and CompleteMultipartUpload: s3:PutObject (S3 API reference,
#: each page's permissions; the service authorization reference lists no action of those names).
RULES: dict[tuple[str, str], Callable[[Call], Iterable[tuple[str, dict[str, Any]]]]] = {
    ("sqs", "SendMessageBatch"): lambda c: [("sqs:SendMessage", c.params)],
    ("sqs", "DeleteMessageBatch"): lambda c: [("sqs:DeleteMessage", c.params)],
    ("sqs", "ChangeMessageVisibilityBatch"): lambda c: [("sqs:ChangeMessageVisibility", c.params)],
    ("dynamodb", "TransactWriteItems"): _transact_items,
    ("dynamodb", "TransactGetItems"): _transact_items,
    ("dynamodb", "BatchWriteItem"): _batch_write,
    ("s3", "GetObject"): _get_object,
    ("s3", "HeadObject"): _get_object,
    ("s3", "ListObjectsV2"): lambda c: [("s3:ListBucket", c.params)],
    ("s3", "CreateMultipartUpload"): lambda c: [("s3:PutObject", c.params)],
    ("s3", "UploadPart"): lambda c: [("s3:PutObject", c.params)],
    ("s3", "CompleteMultipartUpload"): lambda c: [("s3:PutObject", c.params)],
    ("events", "PutEvents"): _put_events,
}


# ----------------------------------------------------------------- resources and condition values from parameters

def candidate_arns(service: str, params: dict[str, Any], stack: Stack, region: str) -> list[str]:
    """Every ARN the parameters name; the action's resource types pick the ones IAM evaluates."""
    p, a = stack.partition, stack.account
    out: list[str] = []
    if "QueueUrl" in params:
        account, name = urlparse(params["QueueUrl"]).path.strip("/").split("/")[-2:]
        out.append(f"arn:{p}:sqs:{region}:{account}:{name}")
    if "Bucket" in params:
        out.append(f"arn:{p}:s3:::{params['Bucket']}")
        if "Key" in params:
            out.append(f"arn:{p}:s3:::{params['Bucket']}/{params['Key']}")
    if "TableName" in params:
        table = f"arn:{p}:dynamodb:{region}:{a}:table/{params['TableName']}"
        # A Query or Scan of a secondary index is authorized on the index (DynamoDB developer guide,
        # "Using IAM policy conditions for fine-grained access control": table/<t>/index/<i>), not the table.
        out.append(f"{table}/index/{params['IndexName']}" if "IndexName" in params else table)
    if "EventBusName" in params:
        bus = params["EventBusName"]
        out.append(bus if bus.startswith("arn:") else f"arn:{p}:events:{region}:{a}:event-bus/{bus}")
    if service == "iot":
        for param, kind in (("thingName", "thing"), ("thingGroupName", "thinggroup"),
                            ("thingTypeName", "thingtype"), ("policyName", "policy"),
                            ("certificateId", "cert")):
            if param in params:
                out.append(f"arn:{p}:iot:{region}:{a}:{kind}/{params[param]}")
        out += [params[k] for k in ("principal", "target", "certificateArn") if k in params]
    return out


def condition_values(action: str, params: dict[str, Any], stack: Stack, region: str) -> dict[str, str]:
    """The request values the action's condition keys read (those the stack's policies could test)."""
    values = dict(SECURE)
    if action == "s3:GetObjectVersion":
        values["s3:versionid"] = params["VersionId"]
    if action == "s3:ListBucket" and "Prefix" in params:
        values["s3:prefix"] = params["Prefix"]
    if action == "events:PutEvents":
        # The EventBridge user guide, "Using IAM policy conditions": events:source and
        # events:detail-type carry the entry's Source and DetailType.
        values["events:source"] = params["Source"]
        values["events:detail-type"] = params["DetailType"]
    if action == "iot:AttachThingPrincipal":
        values["iot:thingArn"] = f"arn:{stack.partition}:iot:{region}:{stack.account}:thing/{params['thingName']}"
    return values


class Unmappable(ValueError):
    """A call the authorization data cannot place: an unknown action or no resource of its types."""


def requests_for(call: Call, principal: str, data: IamData, stack: Stack) -> list[Request]:
    """The IAM requests of one recorded call (the SSE-KMS ones included)."""
    rule = RULES.get((call.service, call.operation))
    pairs = list(rule(call)) if rule else [(f"{call.service}:{call.operation}", call.params)]
    out: list[Request] = []
    for action_key, params in pairs:
        action = data.action(action_key)
        if action is None:
            raise Unmappable(f"{call.function}: {call.service}.{call.operation} -> {action_key}: not in the IAM data")
        context = tuple(sorted(condition_values(action.key, params, stack, call.region).items()))
        if not action.resource_types:
            out.append(Request(principal, action.key, "*", context, f"call {call.operation}"))
            continue
        arns = [arn for arn in candidate_arns(call.service, params, stack, call.region) if action.resource_type_of(arn)]
        if not arns:
            raise Unmappable(f"{call.function}: {call.service}.{call.operation} names no resource of "
                             f"{action.key}'s types {[t.name for t in action.resource_types]}")
        out += [Request(principal, action.key, arn, context, f"call {call.operation}") for arn in arns]
    return out + kms_on_behalf(out, stack, call.region)


# ----------------------------------------------------------------- SSE-KMS on the caller's behalf

def _kms(principal: str, key: str, actions: Iterable[str], via: str, context: dict[str, str], origin: str,
         account: str) -> list[Request]:
    values = {**SECURE, "kms:ViaService": via, "kms:CallerAccount": account, **context}
    return [Request(principal, a, key, tuple(sorted(values.items())), origin) for a in actions]


#: the KMS actions of an S3 write under SSE-KMS, by the request's origin (:func:`kms_on_behalf`); a read: kms:Decrypt.
_S3_KMS_ACTIONS = {
    "call PutObject": ("kms:GenerateDataKey",), "call CreateMultipartUpload": ("kms:GenerateDataKey",),
    "call UploadPart": ("kms:Decrypt",), "call CompleteMultipartUpload": ("kms:Decrypt",),
}


def kms_on_behalf(requests: Iterable[Request], stack: Stack, region: str) -> list[Request]:
    """KMS requests SSE makes with the caller's credentials.

    SQS: a producer's SendMessage needs kms:GenerateDataKey and kms:Decrypt, a consumer's
    ReceiveMessage kms:Decrypt (SQS developer guide, "Key management"), with the queue ARN as
    encryption context ``aws:sqs:arn``. S3 SSE-KMS with a bucket key: GetObject needs kms:Decrypt,
    PutObject (and a multipart upload's CreateMultipartUpload) kms:GenerateDataKey, a multipart
    upload's UploadPart and CompleteMultipartUpload kms:Decrypt as well (S3 reads the upload's data key
    back), encryption context the bucket ARN (S3 user guide, "Using SSE-KMS", "S3 Bucket Keys",
    "Multipart upload and permissions"). DynamoDB
    uses the grant it creates with the table for its table key: no KMS request with the caller's
    credentials (DynamoDB developer guide, "How Amazon DynamoDB uses AWS KMS").
    """
    out: list[Request] = []
    for r in requests:
        if r.action in ("sqs:SendMessage", "sqs:ReceiveMessage"):
            key = stack.queue_key(r.resource)
            if key:
                actions = ("kms:GenerateDataKey", "kms:Decrypt") if r.action == "sqs:SendMessage" else ("kms:Decrypt",)
                out += _kms(r.principal, key, actions, f"sqs.{region}.amazonaws.com",
                            {"kms:EncryptionContext:aws:sqs:arn": r.resource}, f"sse {r.action}", stack.account)
        if r.action in ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"):
            bucket = r.resource.split(":::", 1)[1].split("/", 1)[0]
            key = stack.bucket_key(bucket)
            if key:
                out += _kms(r.principal, key, _S3_KMS_ACTIONS.get(r.origin, ("kms:Decrypt",)),
                            f"s3.{region}.amazonaws.com",
                            {"kms:EncryptionContext:aws:s3:arn": f"arn:{stack.partition}:s3:::{bucket}"},
                            f"sse {r.action}", stack.account)
    return out


def load_calls(folder: Path) -> list[Call]:
    calls: list[Call] = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                raw = json.loads(line)
                calls.append(Call(path.stem, raw["service"], raw["operation"], raw.get("region") or "", raw["params"]))
    return calls
