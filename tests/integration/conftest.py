"""Integration fixtures: a deployment read from terraform-outputs.json, and IoT checks.

The same tests run against the local emulator (``THINGPRESS_ENV=local``, the
default: the session brings the local environment up itself) and against a real
AWS deployment (``THINGPRESS_ENV=pr123`` with that deployment's outputs file).
They use only boto3, the outputs and, for local, the endpoint from the outputs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from thingpress import audit
from thingpress.manifest import scan
from thingpress.records import Certificate
from thingpress.vendors import ParseOptions, parse_manifest, vendor_for_key
from thingpress_cli.deployment import Deployment
from thingpress_cli.operate import wait_for

WAIT_SECONDS = float(os.environ.get("THINGPRESS_WAIT_SECONDS", "600"))


@pytest.fixture(scope="session")
def deployment(local_environment) -> Deployment:
    return local_environment


@pytest.fixture(scope="session")
def iot(deployment):
    return deployment.client("iot")


def expected_certificates(path: Path, signers_dir: Path | None = None) -> list[Certificate]:
    """What the pipeline should import from ``path``: parsed here with the same parser."""
    from cryptography import x509

    signers = tuple(x509.load_pem_x509_certificate(p.read_bytes()) for p in sorted(signers_dir.glob("*.crt"))) \
        if signers_dir else ()
    with path.open("rb") as stream:
        vendor = vendor_for_key(path.name)
        entries = parse_manifest(vendor, stream, ParseOptions(microchip_signers=signers))
        return [e for e, duplicate in scan(entries) if isinstance(e, Certificate) and not duplicate]


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


def assert_imported(deployment: Deployment, iot, cert: Certificate) -> None:
    """The certificate is ACTIVE and its thing complete: type, principal, policy, group."""
    outputs = deployment.outputs
    described = iot.describe_certificate(certificateId=cert.fingerprint)["certificateDescription"]
    assert described["status"] == "ACTIVE", cert.thing_name
    arn = described["certificateArn"]
    thing = iot.describe_thing(thingName=cert.thing_name)
    assert thing.get("thingTypeName") == outputs.thing_type_name, cert.thing_name
    assert thing["attributes"].get("thingpress_vendor"), thing
    principals = iot.list_thing_principals(thingName=cert.thing_name)["principals"]
    assert arn in principals, (cert.thing_name, principals)
    policies = [p["policyName"] for p in iot.list_attached_policies(target=arn)["policies"]]
    assert outputs.iot_policy_name in policies, (cert.thing_name, policies)
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
