"""thingpress activate and deactivate on in-process AWS: the commands submit a job (a message per batch on the
lifecycle queue) and watch it; the lifecycle function's worker runs here on those messages as the Lambda
would (``Pipeline.drain``, while the command waits). IoT, the audit rows and the results files are read back."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from aws_fixtures import FakeContext, MotoState
from events import sqs_event

from thingpress.audit.queries import INDEX_SETTLE_SECONDS
from thingpress.lifecycle.jobs import (
    ACTIVATED,
    DEACTIVATED,
    LIFECYCLE_TPS,
    REFUSED,
    REVOKED,
    REVOKED_IS_FINAL,
    UNKNOWN,
    job_pk,
)
from thingpress.lifecycle.resolve import Resolver
from thingpress.lifecycle.store import JobTable
from thingpress.lifecycle.worker import LINE_FIELDS, LifecycleWorker
from thingpress.throttle import Throttle
from thingpress_cli.core.certificates import write_manifest
from thingpress_cli.engines import lifecycle as engine
from thingpress_cli.main import main


class Pipeline:
    """The lifecycle function on the cloud's lifecycle queue, in process."""

    def __init__(self, cloud: Any):
        self.cloud = cloud
        self.table = JobTable(cloud.dynamodb, cloud.deployment.outputs.audit_table_name)
        throttle = Throttle(LIFECYCLE_TPS, sleep=lambda _s: None)
        #: the waits for the index (``Resolver.settle``): noted, not slept, unless a test says otherwise.
        self.waits: list[float] = []
        self.resolver = Resolver(self.table, cloud.iot, throttle, cloud.deployment.thing_names(),
                                 sleep=self.waits.append)
        self.worker = LifecycleWorker(cloud.iot, self.table, self.resolver, throttle, s3=cloud.s3,
                                      bucket=cloud.deployment.outputs.bucket_name)
        self.handled = 0

    def drain(self, _seconds: float = 0) -> None:
        url = self.cloud.deployment.outputs.lifecycle_queue_url
        while messages := self.cloud.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                         AttributeNames=["All"]).get("Messages", []):
            for m in messages:
                self.worker.handle(m["Body"], sender_id=m["Attributes"].get("SenderId"),
                                   sent_at=int(m["Attributes"]["SentTimestamp"]) / 1000)
                self.cloud.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                self.handled += 1


#: The import the tests start from (its manifest id and moto's state after it), made by the first test
#: of the process that asks for it: ``imported`` installs a copy of that state for every test, as the
#: ``cloud`` fixture does with the deployment (``aws_fixtures.prepared_aws``). The import itself (50
#: certificates through the provider and the importer, ~1 s) is what these tests start from, not what
#: they test.
_IMPORTED: dict[str, Any] = {}


@pytest.fixture
def imported(cloud, tmp_path, monkeypatch):
    """50 certificates imported INACTIVE (THINGPRESS_CERTIFICATE_STATUS), the pipeline on the watch's polls."""
    cloud.settings = dataclasses.replace(cloud.settings, certificate_status="INACTIVE")
    if _IMPORTED:
        _IMPORTED["state"].copy().install()
    else:
        manifest = tmp_path / "factory.txt"
        write_manifest(manifest, count=50, prefix="Lc-")
        _IMPORTED.update(mid=cloud.run(manifest), state=MotoState.live().copy())
    mid = _IMPORTED["mid"]
    pipeline = Pipeline(cloud)
    monkeypatch.setattr(engine, "SLEEP", pipeline.drain)
    rows = sorted(cloud.audit.entries(mid), key=lambda r: r["position"])
    assert len(rows) == 50
    return mid, rows, pipeline


def status_of(cloud, certificate_id: str) -> str:
    return cloud.iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]["status"]


def run(capsys, *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def lines(cloud, key: str) -> list[dict[str, Any]]:
    body = cloud.s3.get_object(Bucket=cloud.deployment.outputs.bucket_name, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def test_activate_40_then_revoke_5_and_deactivate_5(cloud, imported, tmp_path, capsys):
    mid, rows, pipeline = imported
    assert {status_of(cloud, r["certificate_id"]) for r in rows} == {"INACTIVE"}
    things = [r["thing_name"] for r in rows]
    certs = {r["thing_name"]: r["certificate_id"] for r in rows}
    activate, revoke, scrap = things[:40], things[40:45], things[45:]

    listed = tmp_path / "passed.txt"
    listed.write_text("# passed end-of-line test\n" + "\n".join(activate) + "\n")
    facts = tmp_path / "facts.csv"
    facts.write_text("thing_name,station,test_result\n" + "".join(f"{t},ST-{i % 3},pass\n"
                                                                  for i, t in enumerate(activate)))
    code, out = run(capsys, "activate", "--file", str(listed), "--attributes", str(facts), "--yes")
    assert code == 0, out
    assert out["applied"] and out["entries"] == 40 and out["counts"][ACTIVATED] == 40 and not out["problems"]

    # revoke: certificate ids for three, thing names for two; scrap: thing names
    failed = tmp_path / "failed.txt"
    failed.write_text("\n".join([certs[t] for t in revoke[:3]] + revoke[3:]) + "\n")
    code, out = run(capsys, "deactivate", "--file", str(failed), "--status", "REVOKED", "--reason", "failed test",
                    "--yes")
    assert code == 0 and out["counts"][REVOKED] == 5, out
    scrapped = tmp_path / "scrapped.txt"
    scrapped.write_text("\n".join(scrap) + "\n")
    code, out = run(capsys, "deactivate", "--file", str(scrapped), "--status", "INACTIVE", "--reason", "scrapped",
                    "--yes")
    assert code == 0 and out["counts"][DEACTIVATED] == 5, out

    # IoT shows exactly that
    assert [status_of(cloud, certs[t]) for t in activate] == ["ACTIVE"] * 40
    assert [status_of(cloud, certs[t]) for t in revoke] == ["REVOKED"] * 5
    assert [status_of(cloud, certs[t]) for t in scrap] == ["INACTIVE"] * 5
    for i, t in enumerate(activate):
        attributes = cloud.iot.describe_thing(thingName=t)["attributes"]
        assert attributes["station"] == f"ST-{i % 3}" and attributes["test_result"] == "pass"
        assert attributes["thingpress_manifest"] == mid  # the importer's own are kept (merged)
    assert "station" not in cloud.iot.describe_thing(thingName=scrap[0])["attributes"]

    # the audit rows: one per certificate (by_thing: each thing's import and lifecycle), who/when/why
    lifecycle_rows = [r for t in activate + revoke + scrap for r in cloud.audit.rows_for_thing(t)
                      if r["status"] in (ACTIVATED, REVOKED, DEACTIVATED)]
    by_status = {s: [r for r in lifecycle_rows if r["status"] == s] for s in (ACTIVATED, REVOKED, DEACTIVATED)}
    assert sorted(r["thing_name"] for r in by_status[ACTIVATED]) == sorted(activate)
    assert sorted(r["thing_name"] for r in by_status[REVOKED]) == sorted(revoke)
    assert sorted(r["thing_name"] for r in by_status[DEACTIVATED]) == sorted(scrap)
    revoked = by_status[REVOKED][0]
    assert revoked["reason"] == "failed test" and revoked["requested_by"].startswith("arn:aws:")
    assert revoked["previous_status"] == "INACTIVE" and revoked["certificate_status"] == "REVOKED"
    assert revoked["changed"] is True and revoked["updated_at"]
    assert {r["changed"] for r in by_status[DEACTIVATED]} == {False}  # they were INACTIVE already
    history = [r["status"] for r in cloud.audit.rows_for_thing(revoke[0])]
    assert sorted(history) == ["IMPORTED", "REVOKED"]

    # results files: all 50 with their final states, over the three jobs
    final = {}
    for job in pipeline.table.listed_jobs():
        assert job["state"] == "JOB_COMPLETE" and job["results"]["errors"] == 0
        for line in lines(cloud, job["results"]["results_key"]):
            assert list(line) == list(LINE_FIELDS)
            final[line["thing_name"]] = line["certificate_status"]
        assert lines(cloud, job["results"]["errors_key"]) == []
    assert final == {**dict.fromkeys(activate, "ACTIVE"), **dict.fromkeys(revoke, "REVOKED"),
                     **dict.fromkeys(scrap, "INACTIVE")}


def test_things_imported_just_before_the_request_are_found_though_the_index_lags(cloud, imported, tmp_path, capsys,
                                                                                index_lag):
    """The ``by_thing`` index lags its writes (DynamoDB GSI.Writes: "within a fraction of a second"; here 500 ms
    on the ``index_lag`` fixture's manual clock, which moves only when the worker waits). Things of an import
    that finished just before ``activate`` are found, because a batch reads the index only
    ``INDEX_SETTLE_SECONDS`` after it was sent (SQS's SentTimestamp): all ACTIVATED, none UNKNOWN."""
    _, _, pipeline = imported
    index_lag.configure({"lag_ms": 500})
    manifest = tmp_path / "late.txt"
    write_manifest(manifest, count=3, prefix="Late-")
    rows = sorted(cloud.audit.entries(cloud.run(manifest)), key=lambda r: r["position"])
    things = [r["thing_name"] for r in rows]
    assert len(things) == 3 and cloud.audit.rows_for_thing(things[0]) == []  # not in the index yet
    pipeline.resolver.sleep = index_lag.clock.advance
    capsys.readouterr()  # the import's logs

    listed = tmp_path / "passed.txt"
    listed.write_text("\n".join(things) + "\n")
    code, out = run(capsys, "activate", "--file", str(listed), "--yes")
    assert code == 0 and out["counts"][ACTIVATED] == 3 and out["counts"][UNKNOWN] == 0, out
    assert [status_of(cloud, r["certificate_id"]) for r in rows] == ["ACTIVE"] * 3
    assert 1.5 < index_lag.clock.now - 1000 <= INDEX_SETTLE_SECONDS  # one wait, for the one batch


def test_the_function_hands_the_worker_each_records_sent_timestamp(monkeypatch):
    """The Lambda's SQS record carries ``SentTimestamp`` (epoch ms): the worker gets it as ``sent_at`` (seconds)."""
    import lifecycle_handler

    handed: list[dict[str, Any]] = []

    class Worker:
        throttle = Throttle(LIFECYCLE_TPS)

        def handle(self, body: str, **kwargs: Any) -> dict[str, Any]:
            handed.append({"body": body, **kwargs})
            return {}

    monkeypatch.setattr(lifecycle_handler, "_worker", Worker())
    event = sqs_event("batch")
    event["Records"][0]["attributes"].update(SentTimestamp="1796657860457", SenderId="AIDAEXAMPLE")
    assert lifecycle_handler.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}
    assert [(h["body"], h["sent_at"], h["sender_id"]) for h in handed] == [("batch", 1796657860.457, "AIDAEXAMPLE")]


def test_the_same_request_again_changes_nothing(cloud, imported, tmp_path, capsys):
    _, rows, pipeline = imported
    listed = tmp_path / "passed.txt"
    listed.write_text("\n".join(r["thing_name"] for r in rows[:3]) + "\n")
    code, first = run(capsys, "activate", "--file", str(listed), "--yes")
    assert code == 0 and first["counts"][ACTIVATED] == 3
    handled = pipeline.handled
    code, again = run(capsys, "activate", "--file", str(listed), "--yes")
    assert code == 0 and again["job_id"] == first["job_id"] and again["counts"] == first["counts"]
    assert pipeline.handled == handled  # nothing sent again: the job was complete
    assert len(list(pipeline.table.iter_rows(first["job_id"]))) == 3
    # a batch delivered twice is recorded once
    message = engine.batches(first["job_id"], engine.Request(**{k: first[k2] for k, k2 in (
        ("action", "action"), ("target", "status"), ("reason", "reason"), ("requested_by", "requested_by"))}),
        [engine.Entry(1, rows[0]["thing_name"])])[0]
    pipeline.worker.handle(message.encode())
    assert pipeline.table.get_job(first["job_id"])["entries_done"] == 3


def test_dry_run_changes_nothing_and_says_what_would_be_done(cloud, imported, tmp_path, capsys, monkeypatch):
    mid, rows, pipeline = imported
    # The dry run's 50 reads at the lifecycle TPS: counted by the throttle as ever, not slept (~3.5 s).
    monkeypatch.setattr(engine, "Throttle", functools.partial(Throttle, sleep=lambda _s: None))
    code, out = run(capsys, "activate", mid[:12])
    assert code == 0 and not out["applied"] and out["counts"][ACTIVATED] == 50
    assert {status_of(cloud, r["certificate_id"]) for r in rows} == {"INACTIVE"}
    assert pipeline.table.get_job(out["job_id"]) is None
    assert cloud.sqs.receive_message(QueueUrl=cloud.deployment.outputs.lifecycle_queue_url).get("Messages") is None


def test_unknown_entries_are_reported_never_guessed(cloud, imported, tmp_path, capsys):
    _, rows, _ = imported
    listed = tmp_path / "rma.txt"
    listed.write_text(f"{rows[0]['thing_name']}\nLc-999\n{'ab' * 32}\nLc-\n")
    code, out = run(capsys, "deactivate", "--file", str(listed), "--status", "INACTIVE", "--yes")
    assert code == 1, out  # a finding
    assert out["counts"][DEACTIVATED] == 1 and out["counts"][UNKNOWN] == 3
    details = {p["entry"]: p["detail"] for p in out["problems"]}
    assert details["Lc-999"] == "Lc-999: no thing, certificate or device of that name in the audit table"
    assert details["ab" * 32] == f"no certificate {'ab' * 32} in AWS IoT"


def test_a_revoked_certificate_is_not_activated(cloud, imported, tmp_path, capsys):
    _, rows, pipeline = imported
    listed = tmp_path / "one.txt"
    listed.write_text(rows[0]["thing_name"] + "\n")
    assert run(capsys, "deactivate", "--file", str(listed), "--status", "REVOKED", "--yes")[0] == 0
    code, out = run(capsys, "activate", "--file", str(listed), "--yes")
    assert code == 1 and out["counts"][REFUSED] == 1
    assert out["problems"][0]["detail"] == REVOKED_IS_FINAL
    assert status_of(cloud, rows[0]["certificate_id"]) == "REVOKED"


def test_attributes_beyond_the_things_limit_are_refused(cloud, imported, tmp_path, capsys):
    _, rows, _ = imported
    thing = rows[0]["thing_name"]
    names = [f"fact{i}" for i in range(48)]  # the thing holds 3 or 4 of its own: over 50 in all
    facts = tmp_path / "facts.csv"
    facts.write_text("thing_name," + ",".join(names) + "\n" + thing + "," + ",".join("x" for _ in names) + "\n")
    listed = tmp_path / "one.txt"
    listed.write_text(thing + "\n")
    code, out = run(capsys, "activate", "--file", str(listed), "--attributes", str(facts), "--yes")
    assert code == 1 and out["counts"][REFUSED] == 1
    assert "holds at most 50" in out["problems"][0]["detail"]
    assert status_of(cloud, rows[0]["certificate_id"]) == "INACTIVE"  # not activated without its facts


@pytest.mark.parametrize(("text", "message"), [
    ("thing_name,station\nLc-1,ST 1\n", "facts.csv:2: Lc-1: attribute station value must be at most 800 of"),
    ("thing_name,thingpress_manifest\nLc-1,x\n", "facts.csv:1: attribute thingpress_manifest is thingpress's own"),
    ("device,station\nLc-1,x\n", "facts.csv:1: the header must be thing_name or certificate_id"),
    ("thing_name,station\nLc-7,x\n", "facts.csv: 1 key(s) name no entry of the list: Lc-7"),
])
def test_a_bad_attributes_file_is_a_usage_error_naming_file_and_line(cloud, tmp_path, capsys, text, message):
    facts = tmp_path / "facts.csv"
    facts.write_text(text)
    listed = tmp_path / "one.txt"
    listed.write_text("Lc-1\n")
    code, out = run(capsys, "activate", "--file", str(listed), "--attributes", str(facts))
    assert code == 2 and message in out["error"]["message"], out


def test_a_bad_list_line_is_a_usage_error(cloud, tmp_path, capsys):
    listed = tmp_path / "bad.txt"
    listed.write_text("Lc-1\nnot a name\n")
    code, out = run(capsys, "deactivate", "--file", str(listed), "--status", "REVOKED")
    assert code == 2 and out["error"]["message"].endswith(
        "bad.txt:2: 'not a name' is no thing name, certificate id or device id (letters, digits, ':', '_', '-', "
        "at most 128)")


def test_job_rows_live_in_their_own_partition(cloud, imported, tmp_path, capsys):
    _, rows, pipeline = imported
    listed = tmp_path / "one.txt"
    listed.write_text(rows[0]["thing_name"] + "\n")
    _, out = run(capsys, "activate", "--file", str(listed), "--yes")
    (row,) = pipeline.table.iter_rows(out["job_id"])
    assert row["pk"] == job_pk(out["job_id"]) and row["sk"] == f"E#000000001#{rows[0]['certificate_id']}"
    assert Path  # noqa: B018 -- imported for the fixtures' paths


def test_a_dead_lettered_batch_is_redriven_and_its_job_completes(cloud, imported, tmp_path, capsys):
    """A batch the function kept failing lands in the lifecycle DLQ (as SQS moves it after maxReceiveCount):
    the job cannot complete until ``thingpress redrive --queue lifecycle`` moves it back."""
    _, rows, pipeline = imported
    out = cloud.deployment.outputs
    listed = tmp_path / "scrap.txt"
    listed.write_text("\n".join(r["thing_name"] for r in rows[:3]) + "\n")

    code, waiting = run(capsys, "deactivate", "--file", str(listed), "--status", "INACTIVE", "--yes", "--timeout", "0")
    assert code == 1 and "0 of 3 entries done" in waiting["error"]["message"]
    for m in cloud.sqs.receive_message(QueueUrl=out.lifecycle_queue_url)["Messages"]:  # its receives spent
        cloud.sqs.send_message(QueueUrl=out.lifecycle_dlq_url, MessageBody=m["Body"])
        cloud.sqs.delete_message(QueueUrl=out.lifecycle_queue_url, ReceiptHandle=m["ReceiptHandle"])
    code, stuck = run(capsys, "deactivate", "--file", str(listed), "--status", "INACTIVE", "--yes", "--timeout", "1")
    assert code == 1 and "0 of 3 entries done" in stuck["error"]["message"]  # nothing left to run it

    code, moved = run(capsys, "redrive", "--queue", "lifecycle")
    assert code == 0 and moved["queues"] == [{"queue": "lifecycle", "dlq": out.lifecycle_dlq_arn, "messages": 1,
                                             "moved": 1, "status": "COMPLETED", "failure": None}]
    code, done = run(capsys, "deactivate", "--file", str(listed), "--status", "INACTIVE", "--yes")
    assert code == 0 and done["counts"][DEACTIVATED] == 3
    assert {status_of(cloud, r["certificate_id"]) for r in rows[:3]} == {"INACTIVE"}
    assert cloud.deployment.queue_depth(out.lifecycle_dlq_url) == 0
