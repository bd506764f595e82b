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

from thingpress.audit.states import COMPLETE, STATUSES
from thingpress.manifest import scan
from thingpress.records import Certificate
from thingpress.vendors import ParseOptions, parse_manifest, vendor_for_key
from thingpress_cli.core.certificates import write_manifest
from thingpress_cli.core.deployment import ENV_DEPLOYMENT, REMOTE, Deployment
from thingpress_cli.core.summaries import wait_for
from thingpress_cli.local.runner.workers import worker_pids

WAIT_SECONDS = float(os.environ.get("THINGPRESS_WAIT_SECONDS", "600"))
#: How long an uploaded manifest may go without a summary row: its provider writes one as it
#: starts, seconds after S3's event notification. A manifest never picked up (a notification
#: dropped: the emulator's log says why) fails in this time, not in ``WAIT_SECONDS``.
PICKUP_SECONDS = float(os.environ.get("THINGPRESS_PICKUP_SECONDS", "120"))
#: The preview environment of tests/environments (thing-name prefix ``pr7-``); a session that runs
#: that scenario deploys it beside ``local`` at the start (tests/conftest.py).
PREVIEW_ENV = "pr7"


def expected_certificates(deployment: Deployment, path: Path, signers_dir: Path | None = None) -> list[Certificate]:
    """What the pipeline of ``deployment`` should import from ``path``: parsed here with the same parser.

    Each thing name is the deployment's, from its outputs (``thing_name_template`` with
    ``thing_name_prefix``), rendered as its providers render it: never assumed.
    """
    from cryptography import x509

    signers = tuple(x509.load_pem_x509_certificate(p.read_bytes()) for p in sorted(signers_dir.glob("*.crt"))) \
        if signers_dir else ()
    names = deployment.thing_names()
    with path.open("rb") as stream:
        vendor = vendor_for_key(path.name)
        entries = parse_manifest(vendor, stream, ParseOptions(microchip_signers=signers))
        return [replace(s.entry, thing_name=names.render(vendor=vendor, name=s.entry.thing_name,
                                                         fingerprint=s.entry.fingerprint,
                                                         certificate_pem=s.entry.certificate_pem))
                for s in scan(entries) if isinstance(s.entry, Certificate) and not s.is_duplicate]


def local_only_outcome(reason: str, *, remote: bool, target: str, runner_running: bool | None,
                       ci: bool) -> tuple[str, str] | None:
    """What a ``local_only`` test does: None to run, else ``("skip" | "fail", message)``.

    A remote deployment (``THINGPRESS_DEPLOYMENT=remote``) is not the local cloud by
    declaration: the test skips with its reason, in CI too. A local run needs a
    deployment on the emulator (target ``local``) and the local Lambda runner
    (``runner_running``; None: not looked at, the target already fails); a missing
    prerequisite fails in CI and skips otherwise.
    """
    if remote:
        return "skip", f"{reason} (remote deployment: {ENV_DEPLOYMENT}={REMOTE})"
    if target != "local":
        missing = (f"the deployment's target is {target!r}, not 'local' (test a deployment elsewhere with "
                   f"{ENV_DEPLOYMENT}={REMOTE})")
    elif not runner_running:
        missing = "the local Lambda runner is not running (thingpress local up)"
    else:
        return None
    return ("fail" if ci else "skip"), f"local run, prerequisite missing: {missing}; {reason}"


def upload_and_wait(deployment: Deployment, path: Path, key_name: str | None = None) -> dict[str, Any]:
    uploaded = deployment.upload(path, key_name=key_name)
    wait_for_pickup(deployment, uploaded.manifest_id, uploaded.key)
    row = wait_for(deployment, uploaded.manifest_id, timeout=WAIT_SECONDS, show_progress=False)
    row["uploaded"] = uploaded
    return row


def wait_for_pickup(deployment: Deployment, manifest_id: str, key: str, timeout: float = PICKUP_SECONDS) -> None:
    """Fail unless the provider has started on the manifest (its summary row exists) within ``timeout``."""
    table = deployment.audit_table()
    deadline = time.monotonic() + timeout
    while table.get_summary(manifest_id) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{key}: no provider started on it within {timeout:.0f} s (manifest {manifest_id}); "
                                 "was its S3 event notification delivered? (local: build/local/logs/emulator.log)")
        time.sleep(0.5)


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
    thing_groups = iot.list_thing_groups_for_thing(thingName=cert.thing_name)["thingGroups"]
    groups = [g["groupName"] for g in thing_groups]
    # The device policy: inherited from the thing group (the default) or attached to the certificate.
    targets = [arn, *(g["groupArn"] for g in thing_groups)]
    policies = {p["policyName"] for t in targets for p in iot.list_attached_policies(target=t)["policies"]}
    if owned_by(deployment, thing):
        assert thing.get("thingTypeName") == outputs.thing_type_name, cert.thing_name
        assert outputs.thing_group_name in groups, (cert.thing_name, groups)
        assert outputs.iot_policy_name in policies, (cert.thing_name, policies)


def outcomes(deployment: Deployment, manifest_id: str) -> dict[str, list[dict[str, Any]]]:
    by_status: dict[str, list[dict[str, Any]]] = {s: [] for s in STATUSES}
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

def fresh_manifest(deployment: Deployment, tmp_path: Path, count: int, label: str) -> tuple[Path, list[Certificate]]:
    path = tmp_path / f"{label}-{uuid.uuid4().hex[:8]}.txt"
    write_manifest(path, count, prefix=f"{label.title()}-{uuid.uuid4().hex[:8]}-")
    return path, expected_certificates(deployment, path)


def kill_workers(function_name: str) -> int:
    killed = 0
    for pid in worker_pids(function_name):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


def signal_workers(function_name: str, signum: int) -> list[int]:
    """Send ``signum`` to every runner worker of ``function_name``; the pids it reached."""
    reached = []
    for pid in worker_pids(function_name):
        try:
            os.kill(pid, signum)
            reached.append(pid)
        except ProcessLookupError:
            pass
    return reached


def frozen_when(function_name: str, predicate, timeout: float, what: str, run: float = 0.005,
                pause: float = 0.015) -> Any:
    """Let ``function_name``'s workers run in short slices until ``predicate()`` holds while they are frozen.

    Each round freezes every worker (SIGSTOP, also any worker spawned meanwhile),
    reads ``predicate()``, then lets them run for ``run`` seconds. When the value is
    truthy the workers are left frozen (SIGSTOP), so the state it describes is
    exactly the state they are killed in: nothing moves between the check and the
    kill. On failure they are let go (SIGCONT).
    """
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            signal_workers(function_name, signal.SIGSTOP)
            time.sleep(pause)  # the frozen share: slows the function ~4x; each slice is 5 ms of its work
            value = predicate()
            if value:
                return value
            signal_workers(function_name, signal.SIGCONT)
            time.sleep(run)
    except BaseException:
        signal_workers(function_name, signal.SIGCONT)
        raise
    signal_workers(function_name, signal.SIGCONT)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


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
    assert row is not None and row["state"] == COMPLETE, row
    rows = table.entries(mid)
    by_fingerprint: dict[str, list[str]] = {}
    for entry in rows:
        if entry["sk"].startswith("C#"):
            by_fingerprint.setdefault(entry["fingerprint"], []).append(entry["status"])
    assert sorted(by_fingerprint) == sorted(c.fingerprint for c in expected)
    assert all(len(states) == 1 and states[0] in STATUSES for states in by_fingerprint.values())
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
