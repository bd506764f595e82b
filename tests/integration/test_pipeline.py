"""End to end: manifests uploaded to the deployment's bucket become things in IoT Core.

Expected results come from parsing each file here with the same parser; the
pipeline's results are read back from IoT and the audit table only.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from thingpress.audit.keys import UNREADABLE_MANIFEST, from_item, manifest_pk, to_item
from thingpress.audit.states import ALREADY_PRESENT, COMPLETE, IMPORTED, REFUSED, REJECTED
from thingpress_cli.core.certificates import write_manifest
from thingpress_cli.core.summaries import wait_for

from deployment_checks import assert_imported, existing_things, expected_certificates, outcomes, upload_and_wait

# sample -> (entries, certificates that should be imported) with default settings
SAMPLE_EXPECTATIONS = {
    "ECC608C-TNGTLSU-B.json": (10, 10),
    "ECC608-TMNGTLSS-B.json": (10, 0),  # signed, verified, and no certificate at all
    "manifest-espressif.csv": (7, 7),
    "manifest-infineon.7z": (200, 200),  # bundle E0E0 by default
    "certificates_test.txt": (100, 0),  # expired on 2025-09-13: refused by default
}


@pytest.mark.samples
@pytest.mark.parametrize("sample", sorted(SAMPLE_EXPECTATIONS))
def test_real_sample_end_to_end(deployment, iot, vendor_samples, sample):
    path = vendor_samples / sample
    entries, importable = SAMPLE_EXPECTATIONS[sample]
    expected = expected_certificates(deployment, path, vendor_samples / "microchip-signers")
    assert len(expected) == importable
    before = existing_things(iot, [c.thing_name for c in expected])

    row = upload_and_wait(deployment, path)

    assert row["state"] == COMPLETE, row
    assert row["entries"] == entries
    assert row["duplicates"] == 0
    assert row["imported"] == importable - len(before)
    assert row["already_present"] == len(before)
    assert row["rejected"] == entries - importable
    assert row["failed"] == 0
    assert row["imported"] + row["already_present"] + row["rejected"] + row["failed"] == row["entries"]
    assert row["sha256"] and row["key"].endswith(sample)
    by_status = outcomes(deployment, row["manifest_id"])
    assert len(by_status[IMPORTED]) + len(by_status[ALREADY_PRESENT]) == importable
    assert all(r["reason"] for r in by_status[REJECTED])
    # The audit table says what this environment created (things absent before) versus found present.
    landed = by_status[IMPORTED] + by_status[ALREADY_PRESENT]
    assert {r["thing_name"] for r in landed if r["thing_created"]} == {c.thing_name for c in expected} - before
    assert all(r["environment"] == deployment.outputs.environment for r in landed)
    for cert in expected:
        assert_imported(deployment, iot, cert)
    if sample == "certificates_test.txt":
        assert {r["reason"] for r in by_status[REJECTED]} == {"certificate expired on 2025-09-13"} or all(
            "expired" in r["reason"] for r in by_status[REJECTED])
    if sample == "ECC608-TMNGTLSS-B.json":
        assert all("no device certificate" in r["reason"] for r in by_status[REJECTED])


def test_reupload_is_already_present_and_creates_nothing(deployment, iot, tmp_path):
    manifest = tmp_path / "reupload.txt"
    write_manifest(manifest, count=12, prefix=f"Reup-{uuid.uuid4().hex[:8]}-")
    expected = expected_certificates(deployment, manifest)
    assert len(expected) == 12

    first = upload_and_wait(deployment, manifest)
    assert (first["state"], first["imported"], first["already_present"]) == (COMPLETE, 12, 0)
    assert all(r["certificate_registered"] and r["thing_created"]
               for r in outcomes(deployment, first["manifest_id"])[IMPORTED])
    things_after_first = existing_things(iot, [c.thing_name for c in expected])

    second = upload_and_wait(deployment, manifest)

    assert second["manifest_id"] != first["manifest_id"]  # a re-upload is a new object version
    assert (second["state"], second["imported"], second["already_present"], second["failed"]) == (
        COMPLETE, 0, 12, 0)
    by_status = outcomes(deployment, second["manifest_id"])
    assert len(by_status[ALREADY_PRESENT]) == 12
    assert not any(r["certificate_registered"] or r["thing_created"] for r in by_status[ALREADY_PRESENT])
    assert existing_things(iot, [c.thing_name for c in expected]) == things_after_first
    for cert in expected:
        thing = iot.describe_thing(thingName=cert.thing_name)
        assert thing["attributes"]["thingpress_manifest"] == first["manifest_id"]  # kept, not overwritten
        assert_imported(deployment, iot, cert)


def test_malformed_manifest_is_refused_with_reason(deployment, iot, tmp_path):
    bad = tmp_path / "broken.csv"
    bad.write_text("this,is,not\nan,espressif,manifest\n")

    row = upload_and_wait(deployment, bad, key_name=f"broken-{uuid.uuid4().hex[:6]}.csv")

    assert row["state"] == REFUSED
    assert "header" in row["reason"].lower(), row["reason"]
    assert row["imported"] == row["already_present"] == row["queued"] == 0
    assert outcomes(deployment, row["manifest_id"])[IMPORTED] == []


def test_wrong_suffix_under_a_vendor_prefix_is_refused(deployment, tmp_path):
    stray = tmp_path / "notes.txt"
    stray.write_text("not a manifest\n")

    uploaded = deployment.upload(stray, vendor="microchip")  # a .txt under the microchip prefix

    row = wait_for(deployment, uploaded.manifest_id, timeout=120, show_progress=False)
    assert row["state"] == REFUSED
    assert ".json" in row["reason"] and uploaded.key in row["reason"], row["reason"]


def test_poison_import_message_is_rejected_not_retried(deployment):
    sqs = deployment.client("sqs")
    outputs = deployment.outputs
    sent = sqs.send_message(QueueUrl=outputs.import_queue_url, MessageBody="{'not': json}")
    message_id = sent["MessageId"]
    table = deployment.audit_table()
    deadline = time.monotonic() + 120
    row = None
    while time.monotonic() < deadline:
        got = table.client.get_item(TableName=table.table, ConsistentRead=True, Key=to_item(
            {"pk": manifest_pk(UNREADABLE_MANIFEST), "sk": f"X#{message_id}"}))
        if "Item" in got:
            row = from_item(got["Item"])
            break
        time.sleep(0.5)
    assert row is not None, f"no audit row for poison message {message_id}"
    assert row["status"] == REJECTED
    assert "not JSON" in row["reason"]
    # Not retried: it never reaches the DLQ.
    dlq = [json.loads(json.dumps(m)) for m in _receive_all(sqs, outputs.import_dlq_url)]
    assert all(m["MessageId"] != message_id for m in dlq)


def _receive_all(sqs, url):
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=0)
    return got.get("Messages", [])
