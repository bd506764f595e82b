"""The scheduled watchdog on a deployment: a manifest whose provider died before its first
checkpoint (its S3 event gone, no message left anywhere) is resumed and imported.

The stuck manifest is made by hand, the way a dead invocation leaves it: the object
in the bucket under the provider's own prefix (so every call the provider then makes
is one its role allows: ``make iam-check`` judges them), a RECEIVED summary whose
last progress is an hour old, and no message in any queue: the provider's event
source mapping is disabled while the object is put, its S3 event is taken off the
manifest queue, and the mapping is enabled again. Only the watchdog can move it;
the test then reads the audit table and IoT.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from thingpress import events
from thingpress.audit.keys import manifest_id, now_iso
from thingpress.audit.outcomes import OutcomeRecord
from thingpress.audit.states import COMPLETE, IMPORTED, QUEUED, RECEIVED, REFUSED, REJECTED, STALLED
from thingpress.audit.summaries import Progress
from thingpress_cli.core.certificates import write_manifest

from deployment_checks import assert_imported, expected_certificates, outcomes

#: the local runner runs the watchdog every THINGPRESS_LOCAL_SCHEDULE_SECONDS (the session sets 5 s);
#: a runner started without it uses the rule's own rate(5 minutes).
RESUME_WAIT_SECONDS = 400
#: longer than a poller's long poll (the runner stops a disabled mapping's poller after its receive).
POLLER_QUIET_SECONDS = 25


@pytest.mark.local_only("the stuck-manifest scenario switches the provider's trigger off and edits the "
                        "audit table by hand: local deployments only")
def test_the_watchdog_resumes_a_manifest_whose_provider_died_before_its_first_checkpoint(deployment, iot, tmp_path):
    path = tmp_path / "stuck.txt"
    write_manifest(path, count=6, prefix=f"Stuck-{uuid.uuid4().hex[:8]}-")
    expected = expected_certificates(deployment, path)
    bucket = deployment.outputs.bucket_name
    generated = deployment.outputs.vendors["generated"]
    key = f"{generated.prefix}stuck-{uuid.uuid4().hex[:8]}-{path.name}"
    lam, sqs = deployment.client("lambda"), deployment.client("sqs")
    (mapping,) = [m for m in lam.list_event_source_mappings()["EventSourceMappings"]
                  if m["FunctionArn"].endswith(f":function:{generated.function_name}")]
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    try:
        time.sleep(POLLER_QUIET_SECONDS)
        put = deployment.client("s3").put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        taken = 0
        deadline = time.monotonic() + 30
        while not taken and time.monotonic() < deadline:  # the S3 event: lost with the dead invocation
            for message in sqs.receive_message(QueueUrl=generated.manifest_queue_url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=2).get("Messages", []):
                if put["VersionId"] not in message["Body"]:  # the key is URL-encoded there
                    # another upload's (the preview scenario uploads to local at the same time): back it goes
                    sqs.change_message_visibility(QueueUrl=generated.manifest_queue_url,
                                                  ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
                    continue
                sqs.delete_message(QueueUrl=generated.manifest_queue_url, ReceiptHandle=message["ReceiptHandle"])
                taken += 1
        assert taken == 1, "the stuck object's S3 event never reached the manifest queue"
    finally:
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    mid = manifest_id("generated", bucket, key, put["VersionId"])
    table = deployment.audit_table()
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    table.start_manifest(mid, vendor="generated", bucket=bucket, key=key, version=put["VersionId"],
                         etag=put["ETag"].strip('"'), size=path.stat().st_size, now=an_hour_ago)
    assert table.get_summary(mid)["state"] == RECEIVED

    deadline = time.monotonic() + RESUME_WAIT_SECONDS
    row = table.get_summary(mid)
    while row["state"] not in (COMPLETE, REFUSED, STALLED) and time.monotonic() < deadline:
        time.sleep(1)
        row = table.get_summary(mid)

    assert (row["state"], row["entries"], row["imported"], row["failed"], row["outstanding"]) == (
        COMPLETE, 6, 6, 0, 0), row
    assert len(outcomes(deployment, mid)[IMPORTED]) == 6
    for cert in expected:
        assert_imported(deployment, iot, cert)


#: how long the watchdog may take to judge the two hand-made manifests (a sweep every 5 s here).
JUDGE_WAIT_SECONDS = 120


@pytest.mark.local_only("the lost-messages scenario writes manifest summaries by hand: local deployments only")
def test_the_watchdog_stalls_a_manifest_whose_messages_were_lost_and_completes_one_whose_completer_died(
        deployment, tmp_path):
    """Two summaries left as crashes leave them, an hour without progress, parsing done:

    * **lost**: 3 certificates queued, no outcome, no message anywhere (their import messages
      lost): the watchdog counts the import queues and marks it STALLED, naming the 3;
    * **orphaned**: its 2 certificates queued and both outcomes recorded, never completed (the
      importer died before its completion check): the watchdog completes it and puts its
      completion event.

    Both run the watchdog's paths a healthy run never takes, so ``make iam-check`` judges their calls.
    """
    table = deployment.audit_table()
    bucket = deployment.outputs.bucket_name
    prefix = deployment.outputs.vendors["generated"].prefix
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    made = {}
    for name, progress in (("lost", Progress(entries=3, queued=3)),
                           ("orphaned", Progress(entries=2, queued=2))):
        key, version = f"{prefix}{name}-{uuid.uuid4().hex[:8]}.txt", uuid.uuid4().hex
        mid = manifest_id("generated", bucket, key, version)
        table.start_manifest(mid, vendor="generated", bucket=bucket, key=key, version=version, etag="0" * 32,
                             size=1, now=an_hour_ago)
        assert table.checkpoint(mid, progress.entries, progress, state=QUEUED, parse_done=True,
                                previous=0, now=an_hour_ago)
        made[name] = mid
    for position in range(2):  # the orphan's outcomes, without the completion check that follows them
        assert table.record_outcome(made["orphaned"], f"{position:064x}", REJECTED, vendor="generated",
                                    position=position, thing_name=None, reason="hand-made outcome",
                                    complete=False, now=an_hour_ago)

    deadline = time.monotonic() + JUDGE_WAIT_SECONDS
    rows = {name: table.get_summary(mid) for name, mid in made.items()}
    while time.monotonic() < deadline and (rows["lost"]["state"], rows["orphaned"]["state"]) != (
            STALLED, COMPLETE):
        time.sleep(1)
        rows = {name: table.get_summary(mid) for name, mid in made.items()}

    lost, orphaned = rows["lost"], rows["orphaned"]
    assert (lost["state"], lost["outstanding"]) == (STALLED, 3), lost
    assert lost["reason"].startswith("parsed, but 3 of 3 entries have no outcome (outstanding 3)"), lost["reason"]
    assert "import dead-letter queue holds" in lost["reason"], lost["reason"]
    assert (orphaned["state"], orphaned["rejected"], orphaned["outstanding"]) == (COMPLETE, 2, 0), orphaned
    assert orphaned.get("completion_event") in (events.PENDING, events.SENT), orphaned  # the watchdog completed it
    deadline = time.monotonic() + 30
    while orphaned.get("completion_event") == events.PENDING and time.monotonic() < deadline:
        time.sleep(0.5)
        orphaned = table.get_summary(made["orphaned"])
    assert orphaned.get("completion_event") == events.SENT, orphaned


#: how many times the hand-made STALLED mark is tried: the live watchdog may mark the manifest itself (now)
#: between the hand-made checkpoint and the mark; the mark then goes on its STALLED summary instead.
MARK_TRIES = 3


@pytest.mark.local_only("the redriven-manifest scenario writes manifest summaries by hand: local deployments only")
def test_the_watchdog_looks_again_at_a_stalled_manifest_whose_outcomes_came_later_and_completes_it(
        deployment, tmp_path):
    """A STALLED manifest whose outcomes came after its mark (what an import DLQ redrive brings), counted,
    but whose completion check was lost: marked two hours ago, its 3 outcomes recorded an hour ago (one
    call, one count, no completion check), idle since. The watchdog lists STALLED manifests, sees that
    something happened since the mark and has been idle for its threshold, looks again and completes it.
    """
    table = deployment.audit_table()
    bucket = deployment.outputs.bucket_name
    prefix = deployment.outputs.vendors["generated"].prefix
    now = datetime.now(UTC)
    parsed, marked, counted = now - timedelta(hours=3), now - timedelta(hours=2), now - timedelta(hours=1)
    key, version = f"{prefix}redriven-{uuid.uuid4().hex[:8]}.txt", uuid.uuid4().hex
    mid = manifest_id("generated", bucket, key, version)
    table.start_manifest(mid, vendor="generated", bucket=bucket, key=key, version=version, etag="0" * 32, size=1,
                         now=parsed)
    assert table.checkpoint(mid, 3, Progress(entries=3, queued=3), state=QUEUED, parse_done=True, previous=0,
                            now=parsed)
    for _ in range(MARK_TRIES):
        seen, shards = table.summary_items(mid)
        if table.mark_stalled(mid, "hand-made: 3 of 3 entries have no outcome", seen=seen, seen_shards=shards,
                              now=marked):
            break
    stalled = table.get_summary(mid)
    assert (stalled["state"], stalled["stalled_at"]) == (STALLED, now_iso(marked)), stalled

    written = table.record_outcomes([OutcomeRecord(mid, f"{position:064x}", REJECTED, vendor="generated",
                                                   position=position, thing_name=None, reason="hand-made outcome")
                                     for position in range(3)], now=counted)
    assert written == [True, True, True]

    deadline = time.monotonic() + JUDGE_WAIT_SECONDS
    row = table.get_summary(mid)
    while row["state"] != COMPLETE and time.monotonic() < deadline:
        time.sleep(1)
        row = table.get_summary(mid)
    assert (row["state"], row["rejected"], row["outstanding"]) == (COMPLETE, 3, 0), row
    deadline = time.monotonic() + 30
    while row.get("completion_event") != events.SENT and time.monotonic() < deadline:
        time.sleep(0.5)
        row = table.get_summary(mid)
    assert row.get("completion_event") == events.SENT, row
