"""The completion event on the deployment: a manifest that completes puts one event with its counts.

The event travels as on AWS: the completing function's PutEvents on the deployment's
bus, the stack's rule (source thingpress, detail-type Manifest Completed), its target
the completion queue, read here through the outputs (``completion_queue_url``).
"""

from __future__ import annotations

import json
import time
import uuid

from thingpress import events
from thingpress.audit.states import COMPLETE
from thingpress_cli.core.certificates import write_manifest

from deployment_checks import upload_and_wait

#: how long the event may trail the COMPLETE summary (the completer puts it right after its update).
EVENT_WAIT_SECONDS = 30


def _events_for(sqs, url: str, manifest_id: str, wait: float) -> list[dict]:
    """Every completion event for ``manifest_id`` received within ``wait`` seconds.

    Other manifests' events (the suite's earlier uploads) are left in the queue, but
    hidden for the wait: with a visibility of 0 the same oldest ten would come back
    on every receive and hide this manifest's event behind them.
    """
    found: list[dict] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  VisibilityTimeout=int(wait) + 5).get("Messages", [])
        for message in got:
            body = json.loads(message["Body"])
            if body.get("detail", {}).get("manifest_id") == manifest_id:
                found.append(body)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if found and not got:
            break
    return found


def test_a_completed_manifest_puts_one_event_with_its_counts(deployment, tmp_path):
    run = uuid.uuid4().hex[:8]
    valid, expired = tmp_path / "valid.txt", tmp_path / "expired.txt"
    write_manifest(valid, count=5, prefix=f"Evt-{run}-")
    write_manifest(expired, count=2, prefix=f"EvtOld-{run}-", expired=True)
    lines = valid.read_bytes().splitlines(keepends=True)
    manifest = tmp_path / f"completion-{run}.txt"
    # 5 certificates, one of them twice (a duplicate), and 2 expired ones (refused)
    manifest.write_bytes(b"".join(lines) + lines[0] + expired.read_bytes())

    row = upload_and_wait(deployment, manifest)

    assert row["state"] == COMPLETE, row
    sqs = deployment.client("sqs")
    received = _events_for(sqs, deployment.outputs.completion_queue_url, row["manifest_id"], EVENT_WAIT_SECONDS)
    assert len(received) == 1, received
    (event,) = received
    assert (event["source"], event["detail-type"]) == (events.SOURCE, events.MANIFEST_COMPLETED)
    detail = event["detail"]
    assert (detail["manifest_id"], detail["vendor"], detail["environment"], detail["state"]) == (
        row["manifest_id"], "generated", deployment.outputs.environment, COMPLETE)
    assert detail["counts"] == {"entries": 8, "imported": 5, "already_present": 0, "rejected": 2, "failed": 0,
                                "duplicates": 1}
    summary = deployment.audit_table().get_summary(row["manifest_id"])
    assert summary["completion_event"] == events.SENT and summary["completion_event_id"] == event["id"]
