"""Floor, pipeline and quota benchmarks on the local environment (one emulator, one run).

* **floor** -- the same five IoT calls per certificate (register, create thing,
  attach principal, attach policy, add to group) from a plain boto3 loop against
  the same emulator: certificates/s with nothing else in the way.
* **pipeline** -- upload a generated manifest of N certificates and time until
  its summary row is COMPLETE in the audit table: S3 -> SQS -> provider -> SQS ->
  importer -> IoT + DynamoDB, run by the local runner on the deployed zips.
* **quota** -- the emulator's quota mode at the AWS default rates (and at a raised
  50 TPS), with the importer's budget set to the same rates: achieved
  certificates/s over the binding quota (the lowest rate of the five APIs).
* **conflicts** -- the default-quota run again with the importer at concurrency 20
  (the event source mapping's maximum concurrency and the budget split 20 ways, as a
  raised deployment runs) on one manifest, with the emulator's transaction holds on
  (``thingpress_cli.local.emulator.conflicts``): the conflicts DynamoDB answered per 1,000
  certificates (each one a retry by ``AuditTable._retrying``) and the quota ratio.

The importer's budget (``THINGPRESS_IOT_TPS``) is changed between phases with
``UpdateFunctionConfiguration`` on the deployed function; the runner picks the
change up within seconds, as Lambda would pick up a configuration change.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thingpress.audit.states import COMPLETE
from thingpress.settings import DEFAULT_IOT_TPS, IMPORT_CONCURRENCY, IOT_TPS
from stacks import defaults
from thingpress_cli.core.certificates import device_certificates, make_ca, write_manifest
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.progress import Meter
from thingpress_cli.core.summaries import wait_all, wait_for
from thingpress_cli.local.emulator import process as emulator

UNLIMITED = {api: 100_000.0 for api in DEFAULT_IOT_TPS}
#: how often a run's summary is read near its end: the end of a run is known to this much. At the
#: command's 0.5 s, a 1,000-certificate run (12 s) was seen complete 0.43 s after its completion event
#: (request log: the last transaction and PutEvents at 11.93-11.97 s, COMPLETE read at 12.39 s): 3 % of
#: the time measured was the poll, not the pipeline.
POLL_SECONDS = 0.05
#: how often it is read while the end is far (``near_end``). Read every 0.05 s throughout, a 13.6 s run
#: made 272 summary Queries, 4.3 ms of the emulator's time each (request log): 1.2 s of the one emulator
#: process the pipeline shares, an eighth of its busy time. On AWS a reader takes nothing from the table.
FAR_POLL_SECONDS = 0.5


@dataclass
class Run:
    name: str
    certificates: int
    seconds: float
    extra: dict[str, Any]

    @property
    def rate(self) -> float:
        return self.certificates / self.seconds if self.seconds else 0.0


def set_budget(deployment: Deployment, rates: dict[str, float], settle: float = 10.0,
               concurrency: int | None = None) -> None:
    """Set the deployment's IoT budget as the stack sets ``THINGPRESS_IOT_TPS``: on the importer (with the
    concurrency it is split over) and on every provider, which sizes the backpressure window from it
    (``thingpress.backpressure``); then wait for the runner to pick it up. A budget raised on the importer
    alone would leave the providers refilling a window sized and paced for the old one."""
    lam = deployment.client("lambda")
    outputs = deployment.outputs
    budget = {IOT_TPS: json.dumps(rates, sort_keys=True)}
    changed = False
    for name in [outputs.importer_function_name, *(v.function_name for v in outputs.vendors.values())]:
        wanted = dict(budget)
        if concurrency is not None and name == outputs.importer_function_name:
            wanted[IMPORT_CONCURRENCY] = str(concurrency)
        env = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
        if any(env.get(k) != v for k, v in wanted.items()):
            env.update(wanted)
            lam.update_function_configuration(FunctionName=name, Environment={"Variables": env})
            changed = True
    if changed:
        time.sleep(settle)


def _importer_mappings(deployment: Deployment) -> list[dict[str, Any]]:
    lam = deployment.client("lambda")
    name = deployment.outputs.importer_function_name
    # Listed whole and matched by ARN: moto's FunctionName filter finds no mapping by name.
    mappings = [esm for esm in lam.list_event_source_mappings()["EventSourceMappings"]
                if esm["FunctionArn"].split(":")[6] == name]
    if not mappings:
        raise RuntimeError(f"no event source mapping for {name}")
    return mappings


@dataclass(frozen=True)
class ImporterShape:
    """What the stack deploys around the importer for one concurrency: mapping, timeout, batch, visibility."""

    concurrency: int | None
    timeout: int
    batch_size: int
    visibility_timeout: int

    @classmethod
    def current(cls, deployment: Deployment) -> ImporterShape:
        lam = deployment.client("lambda")
        esm = _importer_mappings(deployment)[0]
        timeout = lam.get_function_configuration(FunctionName=deployment.outputs.importer_function_name)["Timeout"]
        visibility = deployment.client("sqs").get_queue_attributes(
            QueueUrl=deployment.outputs.import_queue_url, AttributeNames=["VisibilityTimeout"])["Attributes"]
        return cls((esm.get("ScalingConfig") or {}).get("MaximumConcurrency"), int(timeout),
                   int(esm["BatchSize"]), int(visibility["VisibilityTimeout"]))

    @classmethod
    def on_aws(cls, rates: dict[str, float], concurrency: int) -> ImporterShape:
        """The AWS target's importer at ``concurrency``: its timeout, the stack's batch rule, the local
        visibility factor (the runner has no 6x retry margin to wait out)."""
        timeout = defaults.IMPORTER_TIMEOUT_SECONDS
        return cls(concurrency, timeout, defaults.import_batch_size(rates, concurrency, timeout),
                   defaults.visibility_timeout(timeout, defaults.LOCAL_VISIBILITY_FACTOR))

    def apply(self, deployment: Deployment) -> None:
        """Deploy this shape; the runner restarts its pollers on the changed mapping and function."""
        lam = deployment.client("lambda")
        deployment.client("sqs").set_queue_attributes(
            QueueUrl=deployment.outputs.import_queue_url,
            Attributes={"VisibilityTimeout": str(self.visibility_timeout)})
        lam.update_function_configuration(FunctionName=deployment.outputs.importer_function_name,
                                          Timeout=self.timeout)
        scaling = {"MaximumConcurrency": self.concurrency} if self.concurrency else {}
        for esm in _importer_mappings(deployment):
            lam.update_event_source_mapping(UUID=esm["UUID"], ScalingConfig=scaling, BatchSize=self.batch_size)


def floor(deployment: Deployment, count: int) -> Run:
    """Five IoT calls per certificate from one plain boto3 loop."""
    iot = deployment.client("iot")
    out = deployment.outputs
    tag = uuid.uuid4().hex[:8]
    devices = list(device_certificates(make_ca(), count, prefix=f"Floor-{tag}-"))
    pems = [d.pem.decode() for d in devices]
    started = time.perf_counter()
    for device, pem in zip(devices, pems, strict=True):
        arn = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")["certificateArn"]
        iot.create_thing(thingName=device.name, thingTypeName=out.thing_type_name,
                         attributePayload={"attributes": {"thingpress_manifest": f"floor-{tag}"}})
        iot.attach_thing_principal(thingName=device.name, principal=arn)
        iot.attach_policy(policyName=out.iot_policy_name, target=arn)
        iot.add_thing_to_thing_group(thingGroupName=out.thing_group_name, thingName=device.name)
    return Run("floor", count, time.perf_counter() - started, {"calls_per_certificate": 5})


def pipeline(deployment: Deployment, count: int, workdir: Path, name: str = "pipeline",
             timeout: float = 1800.0) -> Run:
    """Upload a fresh generated manifest; seconds from upload until the audit row is COMPLETE."""
    manifest = workdir / f"{name}-{uuid.uuid4().hex[:8]}.txt"
    write_manifest(manifest, count, prefix=f"{name.title()}-{uuid.uuid4().hex[:8]}-")
    started = time.perf_counter()
    uploaded = deployment.upload(manifest)
    row = wait_for(deployment, uploaded.manifest_id, timeout=timeout, show_progress=False, interval=near_end(count))
    seconds = time.perf_counter() - started
    if row["state"] != COMPLETE:
        raise RuntimeError(f"{name}: manifest ended {row['state']}: {row.get('reason')}")
    lost = count - (row["imported"] + row["already_present"] + row["rejected"] + row["failed"])
    return Run(name, count, seconds, {
        "manifest": uploaded.manifest_id, "imported": row["imported"], "failed": row["failed"],
        "rejected": row["rejected"], "lost": lost,
    })


def near_end(count: int) -> Callable[[dict[str, Meter]], float]:
    """The wait between two reads of one run's summary (``wait_for``'s ``interval``): a quarter of the time
    left at the rate seen (``count`` certificates), between ``POLL_SECONDS`` and ``FAR_POLL_SECONDS``."""
    def interval(meters: dict[str, Meter]) -> float:
        (meter,) = meters.values()
        rate = meter.rate
        left = (count - meter.finished) / rate if rate else FAR_POLL_SECONDS * 4
        return min(FAR_POLL_SECONDS, max(POLL_SECONDS, left / 4))

    return interval


def warm_up(deployment: Deployment, workdir: Path, count: int = 50) -> None:
    """Two small manifests at once, so that every poller slot the measured runs use has its worker warm.

    The first upload after ``local up`` starts the provider's and the importers' worker processes
    (interpreter, layer, handler imports: about a second each), which a 12-second run then counts as
    pipeline time; Lambda keeps an instance warm between invocations, and cold starts are measured on
    their own (``bench_importer_import``). Two manifests at once reach both of the provider's slots.
    """
    manifests = []
    for _ in range(2):
        manifest = workdir / f"warm-up-{uuid.uuid4().hex[:8]}.txt"
        write_manifest(manifest, count, prefix=f"Warm-{uuid.uuid4().hex[:8]}-")
        manifests.append(manifest)
    mids = [deployment.upload(manifest).manifest_id for manifest in manifests]
    rows = wait_all(deployment, mids, timeout=300.0, show_progress=False, interval=POLL_SECONDS)
    if any(row["state"] != COMPLETE for row in rows.values()):
        raise RuntimeError(f"warm-up: {[(mid, row['state']) for mid, row in rows.items()]}")


def dlq_depth(deployment: Deployment) -> int:
    sqs = deployment.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=deployment.outputs.import_dlq_url,
                                     AttributeNames=["ApproximateNumberOfMessages",
                                                     "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def quota(deployment: Deployment, count: int, rates: dict[str, float], workdir: Path, name: str) -> Run:
    """Pipeline under the emulator's quota mode with the importer budget at the same rates."""
    endpoint = deployment.outputs.endpoint_url
    dlq_before = dlq_depth(deployment)
    set_budget(deployment, rates)
    emulator.set_quotas(endpoint, rates)
    try:
        run = pipeline(deployment, count, workdir, name=name)
    finally:
        emulator.set_quotas(endpoint, {})
    binding = min(rates.values())
    run.extra.update({"binding_tps": binding, "ratio": run.rate / binding,
                      "dlq_messages": dlq_depth(deployment) - dlq_before})
    return run


def conflicts(deployment: Deployment, count: int, rates: dict[str, float], workdir: Path,
              concurrency: int = 20) -> Run:
    """The default-quota pipeline with the importer at ``concurrency`` and the emulator's transaction holds on.

    The importer is deployed as the AWS target deploys it at that concurrency (``ImporterShape.on_aws``:
    60 s timeout, the stack's batch rule, 7 at 20 instances over 10/s) and put back afterwards. The local
    target's 20 s timeout is no shape to measure at: with 10 records at 0.5/s each invocation ran to
    its timeout (ratio 0.66-0.85), and with the stack's local batch of 2 the runner's per-invocation
    cost, not the quota, limited it (0.36) on this 2-core machine.
    """
    endpoint = deployment.outputs.endpoint_url
    lam = deployment.client("lambda")
    name = deployment.outputs.importer_function_name
    before_env = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"].get(IMPORT_CONCURRENCY)
    held = emulator.conflict_report(endpoint)
    if not held["settings"]["hold_ms"]:
        raise RuntimeError("the emulator holds no transaction (THINGPRESS_EMULATOR_TRANSACTION_HOLD_MS=0): "
                           "no conflict can be measured")
    deployed = ImporterShape.current(deployment)
    shape = ImporterShape.on_aws(rates, concurrency)
    shape.apply(deployment)
    set_budget(deployment, rates, concurrency=concurrency)
    answered_before = sum(held["counts"].values())
    try:
        run = quota(deployment, count, rates, workdir, name="conflicts")
    finally:
        deployed.apply(deployment)
        set_budget(deployment, rates, concurrency=int(before_env or 1))
    answered = sum(emulator.conflict_report(endpoint)["counts"].values()) - answered_before
    run.extra.update({"concurrency": concurrency, "batch_size": shape.batch_size, "timeout": shape.timeout,
                      "hold_ms": held["settings"]["hold_ms"], "conflicts": answered,
                      "conflicts_per_1000": round(1000 * answered / count, 1)})
    return run
