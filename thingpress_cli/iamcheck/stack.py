"""The synthesized stack (``cdktf.out/stacks/<stack>/cdk.tf.json``) with its policies resolved.

Terraform references (``${aws_sqs_queue.x.arn}``, the partition and account data
sources) are resolved the way the AWS provider computes them, from the resource's
own configuration (a queue ARN from its name, region and account). A KMS key's id
is only known once it exists: its ARN ends in the key's Terraform address, the
same for every reference, which is all an evaluation needs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOKEN = re.compile(r"\$\{([a-z0-9_]+)\.([A-Za-z0-9_.-]+?)\.([a-z_]+)\}")
DATA_TOKEN = re.compile(r"\$\{data\.([a-z_]+)\.([A-Za-z0-9_-]+)\.([a-z_]+)\}")


@dataclass(frozen=True)
class Function:
    """A deployed function and what AWS does on its behalf."""

    name: str
    role_arn: str
    policy: dict[str, Any]
    #: the queue its event source mapping reads (None: invoked otherwise, e.g. by an EventBridge schedule).
    queue_arn: str | None
    log_group_arn: str


@dataclass
class Stack:
    raw: dict[str, Any]
    account: str
    region: str
    partition: str = "aws"
    functions: dict[str, Function] = field(default_factory=dict)

    # ------------------------------------------------------------------ resolution
    def _config(self, kind: str, address: str) -> dict[str, Any]:
        return dict(self.raw["resource"][kind][address])

    def attribute(self, kind: str, address: str, attr: str) -> str:
        config = self._config(kind, address)
        p, r, a = self.partition, self.region, self.account
        name = config.get("name") or config.get("function_name") or config.get("bucket")
        if attr == "arn":
            formats = {
                "aws_sqs_queue": f"arn:{p}:sqs:{r}:{a}:{name}",
                "aws_s3_bucket": f"arn:{p}:s3:::{name}",
                "aws_dynamodb_table": f"arn:{p}:dynamodb:{r}:{a}:table/{name}",
                "aws_cloudwatch_log_group": f"arn:{p}:logs:{r}:{a}:log-group:{name}",
                "aws_sns_topic": f"arn:{p}:sns:{r}:{a}:{name}",
                "aws_iam_role": f"arn:{p}:iam::{a}:role/{name}",
                "aws_lambda_function": f"arn:{p}:lambda:{r}:{a}:function:{name}",
                "aws_kms_key": f"arn:{p}:kms:{r}:{a}:key/{address}",
                "aws_lambda_layer_version": f"arn:{p}:lambda:{r}:{a}:layer:{config.get('layer_name')}:1",
            }
            if kind not in formats:
                raise KeyError(f"no ARN rule for {kind}.{address}")
            return self.resolve(formats[kind])
        if attr in ("id", "name", "bucket", "function_name") and name is not None:
            return self.resolve(str(name))
        if attr == "url" and kind == "aws_sqs_queue":
            return f"https://sqs.{r}.amazonaws.com/{a}/{self.resolve(str(name))}"
        if attr in config:
            return self.resolve(str(config[attr]))
        raise KeyError(f"cannot resolve {kind}.{address}.{attr}")

    def resolve(self, text: str) -> str:
        data = {"aws_partition": {"partition": self.partition}, "aws_caller_identity": {"account_id": self.account},
                "aws_region": {"name": self.region}}
        text = DATA_TOKEN.sub(lambda m: data[m.group(1)][m.group(3)], text)
        text = TOKEN.sub(lambda m: self.attribute(m.group(1), m.group(2), m.group(3)), text)
        return text.replace("$${", "${")  # Terraform's escape for a literal "${" (IoT policy variables)

    def document(self, text: str) -> dict[str, Any]:
        return dict(json.loads(self.resolve(text)))

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return dict(self.raw.get("resource", {}).get(kind, {}))

    # ------------------------------------------------------------------ the stack's policies
    def policies(self) -> dict[str, dict[str, Any]]:
        """Every policy document of the stack, by a readable name: ``<kind> <name>``."""
        out: dict[str, dict[str, Any]] = {}
        for address, config in self.resources("aws_iam_role_policy").items():
            role = self.resolve(config["role"])
            out[f"role {role}"] = self.document(config["policy"])
        for kind, attr, key in (("aws_kms_key", "policy", "description"), ("aws_sqs_queue", "policy", "name"),
                                ("aws_s3_bucket_policy", "policy", "bucket"), ("aws_sns_topic_policy", "policy", "arn"),
                                ("aws_iot_policy", "policy", "name")):
            for address, config in self.resources(kind).items():
                if attr in config:
                    out[f"{kind} {self.resolve(str(config[key])) if kind != 'aws_kms_key' else address}"] = (
                        self.document(config[attr]))
        return out

    def key_policy(self, key_arn: str) -> dict[str, Any]:
        address = key_arn.rsplit("/", 1)[-1]
        return self.document(self._config("aws_kms_key", address)["policy"])

    def queue_policy(self, queue_arn: str) -> dict[str, Any] | None:
        for config in self.resources("aws_sqs_queue").values():
            if queue_arn.endswith(f":{self.resolve(config['name'])}") and "policy" in config:
                return self.document(config["policy"])
        return None

    def queue_key(self, queue_arn: str) -> str | None:
        for config in self.resources("aws_sqs_queue").values():
            if queue_arn.endswith(f":{self.resolve(config['name'])}"):
                return self.resolve(config["kms_master_key_id"]) if "kms_master_key_id" in config else None
        return None

    def bucket_policy(self, bucket: str) -> dict[str, Any] | None:
        for config in self.resources("aws_s3_bucket_policy").values():
            if self.resolve(config["bucket"]) == bucket:
                return self.document(config["policy"])
        return None

    def bucket_key(self, bucket: str) -> str | None:
        for config in self.resources("aws_s3_bucket_server_side_encryption_configuration").values():
            if self.resolve(config["bucket"]) == bucket:
                rule = config["rule"][0]["apply_server_side_encryption_by_default"]
                return self.resolve(rule["kms_master_key_id"])
        return None

    def table_key(self, table: str) -> str | None:
        for config in self.resources("aws_dynamodb_table").values():
            if self.resolve(config["name"]) == table and config.get("server_side_encryption", {}).get("enabled"):
                return self.resolve(config["server_side_encryption"]["kms_key_arn"])
        return None

    def topic_policy(self, topic_arn: str) -> dict[str, Any] | None:
        for config in self.resources("aws_sns_topic_policy").values():
            if self.resolve(config["arn"]) == topic_arn:
                return self.document(config["policy"])
        return None


def load(path: Path, account: str, region: str | None = None) -> Stack:
    raw = json.loads(path.read_text())
    region = region or raw["provider"]["aws"][0]["region"]
    stack = Stack(raw, account, region)
    roles = {address: config for address, config in stack.resources("aws_iam_role").items()}
    policies = {stack.resolve(c["role"]): stack.document(c["policy"]) for c in stack.resources("aws_iam_role_policy").values()}
    mappings = {stack.resolve(c["function_name"]): stack.resolve(c["event_source_arn"])
                for c in stack.resources("aws_lambda_event_source_mapping").values()}
    for config in stack.resources("aws_lambda_function").values():
        name = stack.resolve(config["function_name"])
        role_arn = stack.resolve(config["role"])
        role_name = role_arn.rsplit("/", 1)[-1]
        assert any(stack.resolve(r["name"]) == role_name for r in roles.values()), role_arn
        log_group = stack.resolve(config["logging_config"]["log_group"])
        stack.functions[name] = Function(
            name=name, role_arn=role_arn, policy=policies[role_name],
            queue_arn=mappings.get(stack.attribute("aws_lambda_function", _address(stack, name), "arn")),
            log_group_arn=f"arn:{stack.partition}:logs:{stack.region}:{account}:log-group:{log_group}")
    return stack


def _address(stack: Stack, function_name: str) -> str:
    return next(a for a, c in stack.resources("aws_lambda_function").items()
                if stack.resolve(c["function_name"]) == function_name)
