"""``thingpress redrive`` against in-process AWS: FAILED certificates come back through the DLQ."""

from __future__ import annotations

import json

import factories
from cli_cloud import POLICY

from thingpress_cli.commands import redrive as redrive_cmd
from thingpress_cli.main import main


def test_failed_imports_are_redriven_and_then_imported(cloud, tmp_path, capsys):
    cloud.iot.delete_policy(policyName=POLICY)  # AttachPolicy fails: transient, FAILED after 3 deliveries
    devs = factories.devices(2, prefix="Redrive-")
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(devs))
    mid = cloud.run(path)
    summary = cloud.audit.get_summary(mid)
    assert (summary["failed"], summary["imported"], summary["state"]) == (2, 0, "COMPLETE")
    out = cloud.deployment.outputs
    assert cloud.deployment.queue_depth(out.import_dlq_url) == 2
    cloud.iot.create_policy(policyName=POLICY, policyDocument='{"Version":"2012-10-17","Statement":[]}')
    capsys.readouterr()

    assert main(["redrive", "--queue", "import", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == {"moved": 2, "failed": 0, "queues": [
        {"queue": "import", "dlq": out.import_dlq_arn, "messages": 2, "moved": 2, "status": "COMPLETED",
         "failure": None}], "stalled_noted": []}
    assert cloud.deployment.queue_depth(out.import_dlq_url) == 0
    assert cloud.import_some() == 2
    summary = cloud.audit.get_summary(mid)
    assert (summary["failed"], summary["imported"]) == (0, 2)
    row = cloud.audit.get_outcome(mid, factories.fingerprint(devs[0]))
    assert (row["status"], row["previous_failure"]) == (
        "IMPORTED", "after 3 deliveries: ResourceNotFoundException: The specified resource does not exist")


def test_all_queues_reports_empty_ones(cloud, capsys):
    out = cloud.deployment.outputs
    cloud.sqs.send_message(QueueUrl=out.vendors["espressif"].manifest_dlq_url, MessageBody="{}")
    assert main(["redrive"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == "import                 empty"
    assert "manifests/espressif    1 of 1 moved, COMPLETED" in text
    assert text[-1] == "moved 1 messages back to their queues"
    assert cloud.deployment.queue_depth(out.vendors["espressif"].manifest_queue_url) == 1


def test_a_redrive_of_the_import_dlq_is_noted_on_the_stalled_manifests(cloud, tmp_path, capsys):
    """So that the watchdog looks at them again (thingpress.watchdog); a manifest DLQ's redrive is not noted."""
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(2, prefix="Stalled-")))
    uploaded = cloud.deployment.upload(path)
    cloud.provide(uploaded)
    mid = uploaded.manifest_id
    table = cloud.audit
    seen, shards = table.summary_items(mid)
    assert table.mark_stalled(mid, "lost", seen=seen, seen_shards=shards)
    capsys.readouterr()  # the provider's log lines

    assert main(["redrive", "--queue", "manifests", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stalled_noted"] == []
    assert "redriven_at" not in table.get_summary(mid)
    assert main(["redrive", "--queue", "import"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "1 STALLED manifest(s) noted as redriven: the watchdog looks at them again once the redrive has been "
        "idle for its threshold")
    assert table.get_summary(mid)["redriven_at"] >= table.get_summary(mid)["stalled_at"]


def test_a_running_task_is_followed_not_started_again():
    class Sqs:
        """The exact answers of a DLQ whose task is already running, then completes."""

        def __init__(self):
            self.calls = []
            self.lists = [[{"TaskHandle": "h", "Status": "RUNNING"}],
                          [{"TaskHandle": "h", "Status": "RUNNING", "ApproximateNumberOfMessagesMoved": 1}],
                          [{"TaskHandle": "h", "Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 3}]]

        def get_queue_attributes(self, **kwargs):
            return {"Attributes": {"ApproximateNumberOfMessages": "2"}}

        def list_message_move_tasks(self, **kwargs):
            self.calls.append("list")
            return {"Results": self.lists.pop(0)}

        def start_message_move_task(self, **kwargs):
            raise AssertionError("a second task must not be started")

    sqs = Sqs()
    dlq = redrive_cmd.DeadLetters("import", "url", "arn")
    report = redrive_cmd.redrive(sqs, dlq, sleep=lambda _s: None)
    assert (report["moved"], report["status"], sqs.calls) == (3, "COMPLETED", ["list", "list", "list"])


def test_chaos_redrives_dead_letters_only_once_the_queues_are_idle(cloud):
    from thingpress_cli.harness import chaos

    out = cloud.deployment.outputs
    cloud.sqs.send_message(QueueUrl=out.import_dlq_url, MessageBody="{}")  # killed on each of its receives
    cloud.sqs.send_message(QueueUrl=out.vendors["generated"].manifest_queue_url, MessageBody="{}")
    assert not chaos.idle(cloud.deployment)  # a manifest message still to deliver
    cloud.sqs.purge_queue(QueueUrl=out.vendors["generated"].manifest_queue_url)
    assert chaos.idle(cloud.deployment)  # dead letters do not count as work in flight

    assert chaos.redrive_dead_letters(cloud.deployment) == 1

    assert cloud.deployment.queue_depth(out.import_dlq_url) == 0
    assert cloud.deployment.queue_depth(out.import_queue_url) == 1
    assert not chaos.idle(cloud.deployment)


def test_a_completion_event_in_the_results_dlq_goes_back_to_the_results_queue(cloud, capsys):
    out = cloud.deployment.outputs
    event = json.dumps({"detail-type": "thingpress manifest completed", "detail": {"manifest_id": "m"}})
    cloud.sqs.send_message(QueueUrl=out.results_dlq_url, MessageBody=event)

    assert main(["redrive", "--queue", "results", "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["queues"] == [
        {"queue": "results", "dlq": out.results_dlq_arn, "messages": 1, "moved": 1, "status": "COMPLETED",
         "failure": None}]
    results_queue = cloud.sqs.get_queue_url(QueueName="thingpress-unit-results")["QueueUrl"]
    received = cloud.sqs.receive_message(QueueUrl=results_queue)["Messages"]
    assert [m["Body"] for m in received] == [event]
