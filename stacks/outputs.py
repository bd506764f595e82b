"""The outputs contract: every output of a thingpress stack, named in one place.

Pure Python. The stack declares exactly ``contract_keys(target)`` (a test checks it);
the CLI and the integration tests read a deployment only through ``load_outputs``.

``cdktf deploy --outputs-file terraform-outputs.json`` writes
``{"<stack name>": {"<output construct id>": value, ...}, ...}``. The keys are the
construct ids as declared (the CLI maps Terraform output names back to construct
ids through the ``//.outputs`` metadata of cdk.tf.json); nothing is camel-cased.
The stack also declares every output with ``static_id`` so the Terraform output
name is the same key, and ``terraform output -json`` shows the same names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks.naming import PROJECT, VENDORS, Names

PROJECT_KEY = "project"
ENVIRONMENT = "environment"
REGION = "region"
TARGET = "target"
#: the emulator URL; declared for the ``local`` target only.
ENDPOINT_URL = "endpoint_url"
BUCKET_NAME = "manifest_bucket_name"
BUCKET_ARN = "manifest_bucket_arn"
MICROCHIP_SIGNERS_URI = "microchip_signers_uri"
IMPORT_QUEUE_URL = "import_queue_url"
IMPORT_QUEUE_ARN = "import_queue_arn"
IMPORT_DLQ_URL = "import_dlq_url"
IMPORT_DLQ_ARN = "import_dlq_arn"
AUDIT_TABLE_NAME = "audit_table_name"
AUDIT_TABLE_ARN = "audit_table_arn"
IMPORTER_FUNCTION_NAME = "importer_function_name"
IMPORTER_FUNCTION_ARN = "importer_function_arn"
LAYER_ARN = "layer_arn"
IOT_POLICY_NAME = "iot_policy_name"
THING_TYPE_NAME = "thing_type_name"
THING_GROUP_NAME = "thing_group_name"
KMS_KEY_ARN = "kms_key_arn"
ALARM_TOPIC_ARN = "alarm_topic_arn"
DASHBOARD_NAME = "dashboard_name"
WATCHDOG_FUNCTION_NAME = "watchdog_function_name"
#: the EventBridge rule that runs the watchdog, and its schedule expression (``rate(5 minutes)``).
WATCHDOG_SCHEDULE_RULE = "watchdog_schedule_rule"
WATCHDOG_SCHEDULE = "watchdog_schedule"
#: prepended to every vendor thing name ("" when the vendor's names are kept).
THING_NAME_PREFIX = "thing_name_prefix"
#: how each device's thing is named (``thingpress.thing_names``, ``{prefix}`` is the prefix above):
#: with the prefix, what a client needs to know the thing a certificate of this deployment gets.
THING_NAME_TEMPLATE = "thing_name_template"
#: the deployment's EventBridge bus (the completion event, thingpress.events) and the queue its
#: completion rule delivers to (a ready subscription; the integration tests read it).
EVENT_BUS_NAME = "event_bus_name"
EVENT_BUS_ARN = "event_bus_arn"
COMPLETION_QUEUE_URL = "completion_queue_url"
COMPLETION_QUEUE_ARN = "completion_queue_arn"
#: where ``thingpress activate`` and ``deactivate`` send a job's batches, and the function that runs them
#: (thingpress.lifecycle).
LIFECYCLE_QUEUE_URL = "lifecycle_queue_url"
LIFECYCLE_FUNCTION_NAME = "lifecycle_function_name"
#: the dead-letter queues of the lifecycle jobs' batches and of the results writer's completion events
#: (``thingpress redrive --queue lifecycle|results`` moves them back).
LIFECYCLE_DLQ_URL = "lifecycle_dlq_url"
LIFECYCLE_DLQ_ARN = "lifecycle_dlq_arn"
RESULTS_DLQ_URL = "results_dlq_url"
RESULTS_DLQ_ARN = "results_dlq_arn"

#: per-vendor outputs: ``<vendor>_<what>``.
VENDOR_FIELDS = (
    "prefix", "manifest_queue_url", "manifest_queue_arn", "manifest_dlq_url", "manifest_dlq_arn",
    "function_name", "function_arn",
)

COMMON_KEYS = (
    PROJECT_KEY, ENVIRONMENT, REGION, TARGET, BUCKET_NAME, BUCKET_ARN, MICROCHIP_SIGNERS_URI,
    IMPORT_QUEUE_URL, IMPORT_QUEUE_ARN, IMPORT_DLQ_URL, IMPORT_DLQ_ARN, AUDIT_TABLE_NAME, AUDIT_TABLE_ARN,
    IMPORTER_FUNCTION_NAME, IMPORTER_FUNCTION_ARN, LAYER_ARN, IOT_POLICY_NAME, THING_TYPE_NAME,
    THING_GROUP_NAME, KMS_KEY_ARN, ALARM_TOPIC_ARN, DASHBOARD_NAME, WATCHDOG_FUNCTION_NAME, WATCHDOG_SCHEDULE_RULE,
    WATCHDOG_SCHEDULE, THING_NAME_PREFIX, THING_NAME_TEMPLATE, EVENT_BUS_NAME, EVENT_BUS_ARN, COMPLETION_QUEUE_URL,
    COMPLETION_QUEUE_ARN, LIFECYCLE_QUEUE_URL, LIFECYCLE_FUNCTION_NAME, LIFECYCLE_DLQ_URL, LIFECYCLE_DLQ_ARN,
    RESULTS_DLQ_URL, RESULTS_DLQ_ARN,
)


def vendor_key(vendor: str, what: str) -> str:
    if vendor not in VENDORS or what not in VENDOR_FIELDS:
        raise ValueError(f"no output for vendor {vendor!r} field {what!r}")
    return f"{vendor}_{what}"


def contract_keys(target: str) -> tuple[str, ...]:
    """Every output key a stack for ``target`` (aws or local) declares, in order."""
    keys = list(COMMON_KEYS)
    if target == "local":
        keys.append(ENDPOINT_URL)
    keys += [vendor_key(v, w) for v in VENDORS for w in VENDOR_FIELDS]
    return tuple(keys)


class OutputsError(ValueError):
    """The outputs file is missing, malformed or not this deployment's."""


@dataclass(frozen=True, slots=True)
class VendorOutputs:
    vendor: str
    prefix: str
    manifest_queue_url: str
    manifest_queue_arn: str
    manifest_dlq_url: str
    manifest_dlq_arn: str
    function_name: str
    function_arn: str


@dataclass(frozen=True, slots=True)
class DeploymentOutputs:
    """A deployed thingpress stack, as read from its outputs."""

    stack: str
    environment: str
    region: str
    target: str
    endpoint_url: str
    bucket_name: str
    bucket_arn: str
    microchip_signers_uri: str
    import_queue_url: str
    import_queue_arn: str
    import_dlq_url: str
    import_dlq_arn: str
    audit_table_name: str
    audit_table_arn: str
    importer_function_name: str
    importer_function_arn: str
    layer_arn: str
    iot_policy_name: str
    thing_type_name: str
    thing_group_name: str
    kms_key_arn: str
    alarm_topic_arn: str
    dashboard_name: str
    watchdog_function_name: str
    watchdog_schedule_rule: str
    watchdog_schedule: str
    thing_name_prefix: str
    thing_name_template: str
    event_bus_name: str
    event_bus_arn: str
    completion_queue_url: str
    completion_queue_arn: str
    lifecycle_queue_url: str
    lifecycle_function_name: str
    lifecycle_dlq_url: str
    lifecycle_dlq_arn: str
    results_dlq_url: str
    results_dlq_arn: str
    vendors: dict[str, VendorOutputs]

    @classmethod
    def from_mapping(cls, stack: str, values: dict[str, Any]) -> DeploymentOutputs:
        target = values.get(TARGET)
        missing = [k for k in contract_keys(str(target or "aws")) if k not in values]
        if missing:
            raise OutputsError(f"stack {stack} outputs lack {', '.join(missing)} "
                               "(deployed from an older stack version? redeploy)")
        if values[PROJECT_KEY] != PROJECT:
            raise OutputsError(f"stack {stack} has project {values[PROJECT_KEY]!r}, not {PROJECT!r}: "
                               "this is another project's outputs file")
        s = {k: str(v) for k, v in values.items()}
        return cls(
            stack=stack, environment=s[ENVIRONMENT], region=s[REGION], target=s[TARGET],
            endpoint_url=s.get(ENDPOINT_URL, ""), bucket_name=s[BUCKET_NAME], bucket_arn=s[BUCKET_ARN],
            microchip_signers_uri=s[MICROCHIP_SIGNERS_URI],
            import_queue_url=s[IMPORT_QUEUE_URL], import_queue_arn=s[IMPORT_QUEUE_ARN],
            import_dlq_url=s[IMPORT_DLQ_URL], import_dlq_arn=s[IMPORT_DLQ_ARN],
            audit_table_name=s[AUDIT_TABLE_NAME], audit_table_arn=s[AUDIT_TABLE_ARN],
            importer_function_name=s[IMPORTER_FUNCTION_NAME], importer_function_arn=s[IMPORTER_FUNCTION_ARN],
            layer_arn=s[LAYER_ARN], iot_policy_name=s[IOT_POLICY_NAME], thing_type_name=s[THING_TYPE_NAME],
            thing_group_name=s[THING_GROUP_NAME], kms_key_arn=s[KMS_KEY_ARN],
            alarm_topic_arn=s[ALARM_TOPIC_ARN], dashboard_name=s[DASHBOARD_NAME],
            watchdog_function_name=s[WATCHDOG_FUNCTION_NAME], watchdog_schedule_rule=s[WATCHDOG_SCHEDULE_RULE],
            watchdog_schedule=s[WATCHDOG_SCHEDULE],
            thing_name_prefix=s[THING_NAME_PREFIX], thing_name_template=s[THING_NAME_TEMPLATE],
            event_bus_name=s[EVENT_BUS_NAME], event_bus_arn=s[EVENT_BUS_ARN],
            completion_queue_url=s[COMPLETION_QUEUE_URL], completion_queue_arn=s[COMPLETION_QUEUE_ARN],
            lifecycle_queue_url=s[LIFECYCLE_QUEUE_URL], lifecycle_function_name=s[LIFECYCLE_FUNCTION_NAME],
            lifecycle_dlq_url=s[LIFECYCLE_DLQ_URL], lifecycle_dlq_arn=s[LIFECYCLE_DLQ_ARN],
            results_dlq_url=s[RESULTS_DLQ_URL], results_dlq_arn=s[RESULTS_DLQ_ARN],
            vendors={v: VendorOutputs(v, **{w: s[vendor_key(v, w)] for w in VENDOR_FIELDS}) for v in VENDORS},
        )


def load_outputs(path: str | Path, suffix: str) -> DeploymentOutputs:
    """Read stack ``thingpress-<suffix>`` from a ``cdktf deploy --outputs-file`` JSON file."""
    path = Path(path)
    stack = Names(suffix, "us-east-1").stack
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise OutputsError(f"{path}: no outputs file; deploy with "
                           f"`cdktf deploy {stack} --outputs-file {path.name}` first") from None
    except ValueError as exc:
        raise OutputsError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise OutputsError(f"{path}: expected a JSON object {{\"<stack>\": {{...}}}}")
    if stack not in data:
        found = ", ".join(sorted(data)) or "none"
        hint = (" (this looks like flat `terraform output` JSON; use the file written by cdktf --outputs-file)"
                if PROJECT_KEY in data else "")
        raise OutputsError(f"{path}: no stack {stack} (environment suffix {suffix!r}); stacks found: {found}{hint}")
    values = data[stack]
    if not isinstance(values, dict):
        raise OutputsError(f"{path}: stack {stack} is not an object of outputs")
    outputs = DeploymentOutputs.from_mapping(stack, values)
    if outputs.environment != suffix:
        raise OutputsError(f"{path}: stack {stack} says environment {outputs.environment!r}, expected {suffix!r}")
    return outputs
