"""A whole thingpress deployment in in-process moto, for the operator commands (fixture ``cloud`` in conftest).

``cloud`` starts from what the stack would create (bucket, queues and DLQs with
redrive policies, audit table, IoT policy/type/group, an importer function whose
environment carries the settings, the account's raised IoT quotas; created once per process, each test gets a
fresh copy: ``aws_fixtures.prepared_aws``) and writes a ``terraform-outputs.json`` naming
them, so the commands run unchanged through ``Deployment``. ``cloud.run(path)``
runs the real provider and importer code in process over one uploaded manifest.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_fixtures import FAKE_CREDENTIALS, REGION, FakeContext, client, create_audit_table, create_bucket, prepared_aws
from events import s3_event, sqs_event
from moto.core import DEFAULT_ACCOUNT_ID

from stacks import outputs as contract
from stacks.naming import PROJECT, VENDORS, vendor_prefix
from thingpress import settings as env
from thingpress.audit.table import AuditTable
from thingpress.importer.results import RetryLater
from thingpress.importer.rules import CertificateArns
from thingpress.importer.runtime import Importer
from thingpress.provider.runtime import Provider
from thingpress.settings import FunctionSettings
from thingpress.throttle import Throttle
from thingpress_cli.core.deployment import Deployment, Uploaded
from thingpress_cli.local.emulator import servicequotas, sqs_move
from thingpress_cli.local.emulator.quota import Quotas, parse_rates

SUFFIX = "unit"
POLICY = "thingpress-unit-device"
THING_TYPE = "thingpress-unit-device"
THING_GROUP = "thingpress-unit-imported"
IMPORTER = "thingpress-unit-importer"
MAX_RECEIVE = 3


@dataclass
class Cloud:
    deployment: Deployment
    outputs_path: Path
    iot: Any
    sqs: Any
    s3: Any
    dynamodb: Any
    settings: FunctionSettings

    @property
    def audit(self) -> AuditTable:
        return AuditTable(self.dynamodb, self.deployment.outputs.audit_table_name)

    def importer(self) -> Importer:
        arns = CertificateArns("aws", REGION, DEFAULT_ACCOUNT_ID)
        return Importer(self.iot, self.audit, self.settings, arns=arns,
                        throttle=Throttle(self.settings.iot_tps, sleep=lambda _s: None))

    def run(self, path: Path, key_name: str | None = None) -> str:
        """Upload ``path``, run the provider on its S3 event and the importer on every import message."""
        uploaded = self.deployment.upload(path, key_name=key_name)
        self.provide(uploaded)
        self.import_some()
        return uploaded.manifest_id

    def provide(self, uploaded: Uploaded) -> None:
        """The vendor's provider, on the S3 event of exactly that object version."""
        event = sqs_event(s3_event(uploaded.bucket, uploaded.key, version_id=uploaded.version_id))
        provider = Provider(uploaded.vendor, settings=FunctionSettings(
            audit_table=self.settings.audit_table, import_queue_url=self.deployment.outputs.import_queue_url,
            manifest_queue_url=self.deployment.outputs.vendors[uploaded.vendor].manifest_queue_url,
            vendor=uploaded.vendor), s3=self.s3, sqs=self.sqs, dynamodb=self.dynamodb, sleep=lambda _s: None)
        provider.handle(event, FakeContext())

    def import_some(self, limit: int | None = None) -> int:
        """The importer on up to ``limit`` import messages (all when None); returns how many."""
        importer = self.importer()
        url = self.deployment.outputs.import_queue_url
        done = 0
        while limit is None or done < limit:
            count = 10 if limit is None else min(10, limit - done)
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=count, AttributeNames=["All"])
            messages = got.get("Messages", [])
            if not messages:
                break
            for m in messages:
                try:
                    importer.handle(m["Body"], message_id=m["MessageId"],
                                    receive_count=int(m["Attributes"]["ApproximateReceiveCount"]))
                except RetryLater:  # as the Lambda does: the record fails; here it is visible again at once
                    self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                                                       VisibilityTimeout=0)
                    continue
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            done += len(messages)
        return done


def _queue_pair(sqs: Any, name: str) -> tuple[str, str, str, str]:
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE})
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, dlq, dlq_arn


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return out.getvalue()


def _default_session(_deployment: Deployment) -> boto3.Session:
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session(region_name=REGION)
    return boto3.DEFAULT_SESSION


def _deployment() -> tuple[dict[str, Any], dict[str, str]]:
    """What the stack creates (created once per process): returns the outputs' values and the importer's environment."""
    s3, sqs, dynamodb, iot, iam, lam = (client(name) for name in ("s3", "sqs", "dynamodb", "iot", "iam", "lambda"))
    bucket = create_bucket(s3, "thingpress-unit-manifests")
    table = create_audit_table(dynamodb, "thingpress-unit-audit")
    iot.create_policy(policyName=POLICY, policyDocument='{"Version":"2012-10-17","Statement":[]}')
    iot.create_thing_type(thingTypeName=THING_TYPE)
    iot.create_thing_group(thingGroupName=THING_GROUP)
    import_url, import_arn, import_dlq, import_dlq_arn = _queue_pair(sqs, "thingpress-unit-import")
    values: dict[str, Any] = {
        contract.PROJECT_KEY: PROJECT, contract.ENVIRONMENT: SUFFIX, contract.REGION: REGION,
        contract.TARGET: "aws", contract.BUCKET_NAME: bucket, contract.BUCKET_ARN: f"arn:aws:s3:::{bucket}",
        contract.MICROCHIP_SIGNERS_URI: f"s3://{bucket}/trust/microchip-signers/",
        contract.IMPORT_QUEUE_URL: import_url, contract.IMPORT_QUEUE_ARN: import_arn,
        contract.IMPORT_DLQ_URL: import_dlq, contract.IMPORT_DLQ_ARN: import_dlq_arn,
        contract.AUDIT_TABLE_NAME: table, contract.AUDIT_TABLE_ARN: f"arn:aws:dynamodb:{REGION}::table/{table}",
        contract.IMPORTER_FUNCTION_NAME: IMPORTER, contract.IMPORTER_FUNCTION_ARN: "",
        contract.LAYER_ARN: "", contract.IOT_POLICY_NAME: POLICY, contract.THING_TYPE_NAME: THING_TYPE,
        contract.THING_GROUP_NAME: THING_GROUP, contract.KMS_KEY_ARN: "", contract.ALARM_TOPIC_ARN: "",
        contract.DASHBOARD_NAME: "", contract.WATCHDOG_FUNCTION_NAME: "thingpress-unit-watchdog",
        contract.WATCHDOG_SCHEDULE_RULE: "thingpress-unit-watchdog", contract.WATCHDOG_SCHEDULE: "rate(5 minutes)",
        contract.THING_NAME_PREFIX: "", contract.THING_NAME_TEMPLATE: "{prefix}{name}",
        contract.EVENT_BUS_NAME: "thingpress-unit-events",
        contract.EVENT_BUS_ARN: "", contract.COMPLETION_QUEUE_URL: "", contract.COMPLETION_QUEUE_ARN: "",
    }
    lifecycle_url, _, lifecycle_dlq, lifecycle_dlq_arn = _queue_pair(sqs, "thingpress-unit-lifecycle")
    _, _, results_dlq, results_dlq_arn = _queue_pair(sqs, "thingpress-unit-results")
    values.update({contract.LIFECYCLE_QUEUE_URL: lifecycle_url,
                   contract.LIFECYCLE_FUNCTION_NAME: "thingpress-unit-lifecycle",
                   contract.LIFECYCLE_DLQ_URL: lifecycle_dlq, contract.LIFECYCLE_DLQ_ARN: lifecycle_dlq_arn,
                   contract.RESULTS_DLQ_URL: results_dlq, contract.RESULTS_DLQ_ARN: results_dlq_arn})
    for vendor in VENDORS:
        url, arn, dlq, dlq_arn = _queue_pair(sqs, f"thingpress-unit-{vendor}")
        for what, value in (("prefix", vendor_prefix(vendor)), ("manifest_queue_url", url),
                            ("manifest_queue_arn", arn), ("manifest_dlq_url", dlq),
                            ("manifest_dlq_arn", dlq_arn), ("function_name", f"thingpress-unit-{vendor}"),
                            ("function_arn", "")):
            values[contract.vendor_key(vendor, what)] = value
    variables = {env.AUDIT_TABLE: table, env.IMPORT_QUEUE_URL: import_url, env.THING_TYPE: THING_TYPE,
                 env.THING_GROUP: THING_GROUP, env.POLICY_NAMES: POLICY,
                 env.IOT_TPS: json.dumps({"RegisterCertificateWithoutCA": 20, "AttachPolicy": 10}),
                 env.IMPORT_CONCURRENCY: "2", env.MAX_RECEIVE_COUNT: str(MAX_RECEIVE)}
    role = iam.create_role(RoleName="importer", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    created = lam.create_function(FunctionName=IMPORTER, Runtime="python3.13", Role=role, Handler="handler.handler",
                                  Code={"ZipFile": _zip()}, Environment={"Variables": variables})
    values[contract.IMPORTER_FUNCTION_ARN] = created["FunctionArn"]
    return values, variables


def make_cloud(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Cloud]:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    # The commands' boto3 clients come from the process's default session (kept across tests by
    # in_process_aws): a session of their own per Deployment re-reads every service model (~0.1 s
    # a client). Only the session is shared; each test still starts from the deployment as created
    # (prepared_aws: created once, a fresh copy of moto's state for every test).
    monkeypatch.setattr(Deployment, "session", property(_default_session))
    # In-process AWS with the emulator's rules, AWS-true certificate ids (iot.use_valid_cert) among them.
    with prepared_aws("cli", _deployment) as (values, variables):
        sqs_move.install(sqs_move.MoveTasks(sleep=lambda _s: None))  # moto has no message move tasks
        # The account's IoT quotas (GetServiceQuota): raised ones, above the importer's budget (a test of the
        # quota check answers its own: servicequotas.answer_from).
        servicequotas.answer_from(Quotas(parse_rates("raised")))
        path = tmp_path / "terraform-outputs.json"
        path.write_text(json.dumps({f"{PROJECT}-{SUFFIX}": values}))
        monkeypatch.setenv("THINGPRESS_OUTPUTS", str(path))
        monkeypatch.setenv("THINGPRESS_ENV", SUFFIX)
        monkeypatch.setenv("COLUMNS", "80")
        yield Cloud(Deployment.load(path, SUFFIX), path, client("iot"), client("sqs"), client("s3"),
                    client("dynamodb"), FunctionSettings.from_env(variables))
    sqs_move.install()
    servicequotas.answer_from(Quotas())
