"""Checks on a deployment shared by the integration and fault-injection suites.

Expectations come from parsing the manifest here with the same parser the
provider uses; results are read back only from IoT and the audit table.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from thingpress import audit
from thingpress.manifest import scan
from thingpress.records import Certificate
from thingpress.vendors import ParseOptions, parse_manifest, vendor_for_key
from thingpress_cli.deployment import Deployment
from thingpress_cli.generate import write_manifest
from thingpress_cli.operate import wait_for

WAIT_SECONDS = float(os.environ.get("THINGPRESS_WAIT_SECONDS", "600"))


def expected_certificates(path: Path, signers_dir: Path | None = None, *, prefix: str = "") -> list[Certificate]:
    """What the pipeline should import from ``path``: parsed here with the same parser.

    ``prefix``: the deployment's thing-name prefix (``outputs.thing_name_prefix``),
    put before each vendor thing name as the provider does.
    """
    from cryptography import x509

    signers = tuple(x509.load_pem_x509_certificate(p.read_bytes()) for p in sorted(signers_dir.glob("*.crt"))) \
        if signers_dir else ()
    with path.open("rb") as stream:
        vendor = vendor_for_key(path.name)
        entries = parse_manifest(vendor, stream, ParseOptions(microchip_signers=signers))
        return [replace(s.entry, thing_name=prefix + s.entry.thing_name) for s in scan(entries)
                if isinstance(s.entry, Certificate) and not s.is_duplicate]


def upload_and_wait(deployment: Deployment, path: Path, key_name: str | None = None) -> dict[str, Any]:
    uploaded = deployment.upload(path, key_name=key_name)
    row = wait_for(deployment, uploaded.manifest_id, timeout=WAIT_SECONDS, show_progress=False)
    row["uploaded"] = uploaded
    return row


def existing_things(iot, names: list[str]) -> set[str]:
    found = set()
    for name in names:
        try:
            iot.describe_thing(thingName=name)
            found.add(name)
        except iot.exceptions.ResourceNotFoundException:
            pass
    return found


def owned_by(deployment: Deployment, thing: dict[str, Any]) -> bool:
    """Whether this deployment's environment created ``thing`` (its ``thingpress_env`` attribute)."""
    return thing.get("attributes", {}).get("thingpress_env") == deployment.outputs.environment


def assert_imported(deployment: Deployment, iot, cert: Certificate) -> None:
    """The certificate is ACTIVE, attached to its thing and to this environment's policy.

    Type and group are checked only on a thing this environment created: a thing
    found present (created by another environment sharing the account) keeps its
    own type and groups, and is not this environment's to assert on.
    """
    outputs = deployment.outputs
    described = iot.describe_certificate(certificateId=cert.fingerprint)["certificateDescription"]
    assert described["status"] == "ACTIVE", cert.thing_name
    arn = described["certificateArn"]
    thing = iot.describe_thing(thingName=cert.thing_name)
    assert thing["attributes"].get("thingpress_vendor"), thing
    principals = iot.list_thing_principals(thingName=cert.thing_name)["principals"]
    assert arn in principals, (cert.thing_name, principals)
    policies = [p["policyName"] for p in iot.list_attached_policies(target=arn)["policies"]]
    assert outputs.iot_policy_name in policies, (cert.thing_name, policies)
    if owned_by(deployment, thing):
        assert thing.get("thingTypeName") == outputs.thing_type_name, cert.thing_name
        groups = [g["groupName"] for g in iot.list_thing_groups_for_thing(thingName=cert.thing_name)["thingGroups"]]
        assert outputs.thing_group_name in groups, (cert.thing_name, groups)


def outcomes(deployment: Deployment, manifest_id: str) -> dict[str, list[dict[str, Any]]]:
    by_status: dict[str, list[dict[str, Any]]] = {s: [] for s in audit.STATUSES}
    for row in deployment.audit_table().entries(manifest_id):
        by_status[row["status"]].append(row)
    return by_status


def drain(sqs, queue_url: str, seconds: float = 3.0) -> Iterator[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            yield message


# -- fault injection -----------------------------------------------------------------------

def fresh_manifest(tmp_path: Path, count: int, label: str) -> tuple[Path, list[Certificate]]:
    path = tmp_path / f"{label}-{uuid.uuid4().hex[:8]}.txt"
    write_manifest(path, count, prefix=f"{label.title()}-{uuid.uuid4().hex[:8]}-")
    return path, expected_certificates(path)


def worker_pids(function_name: str) -> list[int]:
    """The runner's worker processes for ``function_name`` (found by their Lambda environment)."""
    wanted = f"AWS_LAMBDA_FUNCTION_NAME={function_name}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environ:
            pids.append(int(entry.name))
    return pids


def kill_workers(function_name: str) -> int:
    killed = 0
    for pid in worker_pids(function_name):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def assert_consistent(deployment: Deployment, iot, mid: str, expected: list[Certificate]) -> dict[str, Any]:
    """Exactly one terminal state per certificate, sums add up, IoT holds exactly what is expected."""
    table = deployment.audit_table()
    row = table.get_summary(mid)
    assert row is not None and row["state"] == audit.COMPLETE, row
    rows = table.entries(mid)
    by_fingerprint: dict[str, list[str]] = {}
    for entry in rows:
        if entry["sk"].startswith("C#"):
            by_fingerprint.setdefault(entry["fingerprint"], []).append(entry["status"])
    assert sorted(by_fingerprint) == sorted(c.fingerprint for c in expected)
    assert all(len(states) == 1 and states[0] in audit.STATUSES for states in by_fingerprint.values())
    assert row["imported"] + row["already_present"] + row["rejected"] + row["failed"] + row["duplicates"] == row["entries"]
    assert row["outstanding"] == 0
    assert row["queued"] == len(expected)
    for cert in expected:
        described = iot.describe_certificate(certificateId=cert.fingerprint)["certificateDescription"]
        assert described["status"] == "ACTIVE"
        principals = iot.list_thing_principals(thingName=cert.thing_name)["principals"]
        assert principals == [described["certificateArn"]], (cert.thing_name, principals)
    return row


def queue_depth(sqs, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
