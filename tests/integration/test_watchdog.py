"""The scheduled watchdog on a deployment: a manifest whose provider died before its first
checkpoint (its S3 event gone, no message left anywhere) is resumed and imported.

The stuck manifest is made by hand, the way a dead invocation leaves it: the object
in the bucket, a RECEIVED summary whose last progress is an hour old, and no
message in any queue (the object is put outside the notified prefix, so no S3
event exists). Only the watchdog can move it; the test then reads the audit table
and IoT.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from thingpress import audit
from thingpress_cli.generate import write_manifest

from deployment_checks import assert_imported, expected_certificates, outcomes

#: the local runner runs the watchdog every THINGPRESS_LOCAL_SCHEDULE_SECONDS (the session sets 5 s);
#: a runner started without it uses the rule's own rate(5 minutes).
RESUME_WAIT_SECONDS = 400


def test_the_watchdog_resumes_a_manifest_whose_provider_died_before_its_first_checkpoint(deployment, iot, tmp_path):
    if deployment.outputs.target != "local":
        # the object sits outside the provider's readable prefix and the summary is edited by hand:
        # a local-emulator scenario only.
        message = "the stuck-manifest scenario edits the audit table: local deployments only"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    path = tmp_path / "stuck.txt"
    write_manifest(path, count=6, prefix=f"Stuck-{uuid.uuid4().hex[:8]}-")
    expected = expected_certificates(path)
    bucket = deployment.outputs.bucket_name
    key = f"stuck/{uuid.uuid4().hex[:8]}-{path.name}"
    put = deployment.client("s3").put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    mid = audit.manifest_id("generated", bucket, key, put["VersionId"])
    table = deployment.audit_table()
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    table.start_manifest(mid, vendor="generated", bucket=bucket, key=key, version=put["VersionId"],
                         etag=put["ETag"].strip('"'), size=path.stat().st_size, now=an_hour_ago)
    assert table.get_summary(mid)["state"] == audit.RECEIVED

    deadline = time.monotonic() + RESUME_WAIT_SECONDS
    row = table.get_summary(mid)
    while row["state"] not in (audit.COMPLETE, audit.REFUSED, audit.STALLED) and time.monotonic() < deadline:
        time.sleep(1)
        row = table.get_summary(mid)

    assert (row["state"], row["entries"], row["imported"], row["failed"], row["outstanding"]) == (
        audit.COMPLETE, 6, 6, 0, 0), row
    assert len(outcomes(deployment, mid)[audit.IMPORTED]) == 6
    for cert in expected:
        assert_imported(deployment, iot, cert)
