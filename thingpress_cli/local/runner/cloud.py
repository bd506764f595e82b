"""The emulator as the runner reads it: functions as deployed, SQS event source mappings, rate schedules.

* **Mapping settings.** Batch size; concurrency = ``ScalingConfig.MaximumConcurrency``,
  else the function's reserved concurrency, else :data:`DEFAULT_CONCURRENCY`;
  ``ReportBatchItemFailures``.
* **Execution role.** A function runs with its role's temporary credentials
  (``AssumeRole`` on the emulator's STS), as Lambda hands them to it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
import botocore.config

from thingpress.arns import Arn
from thingpress_cli.local import state
from thingpress_cli.local.runner.model import FunctionSpec, Layer, MappingSpec, ScheduleSpec
from thingpress_cli.local.runner.schedules import rate_seconds
from thingpress_cli.local.runner.sqs_source import POLL_WAIT_SECONDS

DEFAULT_CONCURRENCY = 2
_T = TypeVar("_T")


@dataclass
class Emulator:
    """boto3 clients bound to the emulator, created lazily."""

    endpoint: str
    region: str = state.REGION
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _role_credentials: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    #: layer version ARN -> its layer, read once: a layer version never changes (PublishLayerVersion,
    #: https://docs.aws.amazon.com/lambda/latest/api/API_PublishLayerVersion.html: "Each time you call
    #: PublishLayerVersion with the same layer name, a new version is created"; no API changes a version).
    _layers: dict[str, Layer] = field(default_factory=dict)
    #: queue ARN -> queue URL, read once: both are made of the queue's name, account and region.
    _queue_urls: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(
                    service, endpoint_url=self.endpoint, region_name=self.region,
                    aws_access_key_id="testing", aws_secret_access_key="testing",
                    config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 3},
                                                  max_pool_connections=64, read_timeout=POLL_WAIT_SECONDS + 30),
                )
            return self._clients[service]

    def function(self, name: str) -> FunctionSpec:
        lam = self.client("lambda")
        answer = lam.get_function(FunctionName=name)
        config = answer["Configuration"]
        layers = [self.layer(ref["Arn"]) for ref in config.get("Layers", [])]
        reserved = answer.get("Concurrency", {}).get("ReservedConcurrentExecutions")
        return FunctionSpec(
            name=config["FunctionName"], arn=config["FunctionArn"], handler=config["Handler"],
            timeout=int(config.get("Timeout", 3)), memory=int(config.get("MemorySize", 128)),
            environment=tuple(sorted(config.get("Environment", {}).get("Variables", {}).items())),
            code_sha=config["CodeSha256"], code_location=answer["Code"]["Location"], layers=tuple(layers),
            reserved_concurrency=reserved, architectures=tuple(config.get("Architectures", ["x86_64"])),
            ephemeral_mb=int(config.get("EphemeralStorage", {}).get("Size", 512)),
            credentials=self.role_credentials(config["Role"], config["FunctionName"]),
        )

    def _once(self, cache: dict[str, _T], key: str, read: Callable[[], _T]) -> _T:
        """``cache[key]``, from ``read()`` the first time (two threads may both read; the first answer stays)."""
        with self._lock:
            known = cache.get(key)
        if known is None:
            value = read()
            with self._lock:
                known = cache.setdefault(key, value)
        return known

    def layer(self, arn: str) -> Layer:
        """The layer version ``arn`` as deployed (its content read once: :attr:`_layers`)."""

        def read() -> Layer:
            layer = Arn.parse(arn)
            content = self.client("lambda").get_layer_version(
                LayerName=layer.resource_name, VersionNumber=int(layer.qualifier or ""))["Content"]
            return Layer(arn, content["CodeSha256"], content["Location"])

        return self._once(self._layers, arn, read)

    def role_credentials(self, role_arn: str, session: str) -> tuple[tuple[str, str], ...]:
        """Temporary credentials of ``role_arn`` from the emulator's STS, as Lambda gives a function its
        execution role's: once per role (moto's never expire), so a function's spec stays the same."""

        def read() -> tuple[tuple[str, str], ...]:
            answer = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session[:64])["Credentials"]
            return (("AWS_ACCESS_KEY_ID", answer["AccessKeyId"]), ("AWS_SECRET_ACCESS_KEY", answer["SecretAccessKey"]),
                    ("AWS_SESSION_TOKEN", answer["SessionToken"]))

        return self._once(self._role_credentials, role_arn, read)

    def queue_url(self, arn: str) -> str:
        """The URL of the queue ``arn`` (read once: :attr:`_queue_urls`)."""

        def read() -> str:
            queue = Arn.parse(arn)
            return str(self.client("sqs").get_queue_url(QueueName=queue.resource,
                                                        QueueOwnerAWSAccountId=queue.account)["QueueUrl"])

        return self._once(self._queue_urls, arn, read)

    def mappings(self) -> list[MappingSpec]:
        """Every enabled SQS event source mapping, with its function as deployed now."""
        lam = self.client("lambda")
        found: list[MappingSpec] = []
        functions: dict[str, FunctionSpec] = {}
        for page in lam.get_paginator("list_event_source_mappings").paginate():
            for esm in page["EventSourceMappings"]:
                source = esm.get("EventSourceArn", "")
                if not source.startswith("arn:aws:sqs:") or esm.get("State", "Enabled") not in ("Enabled", "Creating", "Updating"):
                    continue
                name = Arn.parse(esm["FunctionArn"]).resource_name
                spec = functions.get(name) or functions.setdefault(name, self.function(name))
                scaling = (esm.get("ScalingConfig") or {}).get("MaximumConcurrency")
                concurrency = int(scaling or spec.reserved_concurrency or DEFAULT_CONCURRENCY)
                found.append(MappingSpec(
                    uuid=esm["UUID"], queue_arn=source, queue_url=self.queue_url(source),
                    batch_size=int(esm.get("BatchSize") or 10), concurrency=max(1, concurrency),
                    report_batch_item_failures="ReportBatchItemFailures" in (esm.get("FunctionResponseTypes") or []),
                    function=spec,
                ))
        return found


    def schedules(self, report: Callable[[str], None], period_override: float | None = None) -> list[ScheduleSpec]:
        """Every enabled rate-scheduled rule's function targets, with each function as deployed now."""
        events = self.client("events")
        found: list[ScheduleSpec] = []
        for page in events.get_paginator("list_rules").paginate():
            for rule in page["Rules"]:
                expression = rule.get("ScheduleExpression")
                if not expression or rule.get("State", "ENABLED") != "ENABLED":
                    continue
                period = rate_seconds(expression)
                if period is None:
                    report(f"rule {rule['Name']}: schedule {expression!r} is not run locally (rate(...) only)")
                    continue
                for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                    if ":lambda:" not in target["Arn"]:
                        continue
                    found.append(ScheduleSpec(
                        rule_name=rule["Name"], rule_arn=rule["Arn"], expression=expression,
                        period=period_override or period, target_id=target["Id"],
                        function=self.function(Arn.parse(target["Arn"]).resource_name)))
        return found
