"""The runner runs scheduled functions: EventBridge rate rules with a function target, against a real emulator."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from deployment_checks import wait_until
from factories import zip_of

from thingpress_cli.local.runner.schedules import rate_seconds, scheduled_event
from thingpress_cli.local.runner.supervisor import Runner

HANDLER = '''
import json, os

def handler(event, context):
    with open(os.environ["RECORD_FILE"], "a") as sink:
        sink.write(json.dumps(event) + "\\n")
    return {"ok": True}
'''




def test_rate_expressions_and_the_scheduled_event_shape():
    assert [rate_seconds(e) for e in ("rate(1 minute)", "rate(5 minutes)", "rate(2 hours)", "rate(1 day)")] == [
        60, 300, 7200, 86400]
    assert rate_seconds("cron(0/5 * * * ? *)") is None and rate_seconds("rate(0 minutes)") is None
    event = scheduled_event("arn:aws:events:us-east-1:123456789012:rule/thingpress-local-watchdog", "us-east-1", 0)
    assert {k: event[k] for k in ("detail-type", "source", "account", "time", "region", "resources", "detail")} == {
        "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
        "time": "1970-01-01T00:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/thingpress-local-watchdog"], "detail": {}}


def test_an_enabled_rate_rule_runs_its_function_on_the_shortened_period_and_a_disabled_one_does_not(
        aws, emulator_url: str, tmp_path: Path):
    lam, events, iam = aws("lambda"), aws("events"), aws("iam")
    role = iam.create_role(RoleName=f"sched-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    records: dict[str, Path] = {}
    for state in ("ENABLED", "DISABLED"):
        name = f"sched-{state.lower()}-{uuid.uuid4().hex[:6]}"
        records[state] = tmp_path / f"{name}.jsonl"
        arn = lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="fn.handler",
                                  Timeout=10, MemorySize=128, Code={"ZipFile": zip_of({"fn.py": HANDLER})},
                                  Environment={"Variables": {"RECORD_FILE": str(records[state])}})["FunctionArn"]
        events.put_rule(Name=name, ScheduleExpression="rate(5 minutes)", State=state)
        events.put_targets(Rule=name, Targets=[{"Id": "fn", "Arn": arn}])
    rule_arn = events.describe_rule(Name=next(iter(records.values())).stem)["Arn"]

    runner = Runner(emulator_url, cache_dir=tmp_path / "code", log_dir=tmp_path / "logs", poll_wait=1,
                    schedule_seconds=0.5)
    runner.start(refresh_seconds=0.2)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not records["ENABLED"].exists()
                                               or len(records["ENABLED"].read_text().splitlines()) < 2):
            time.sleep(0.1)
    finally:
        runner.close()

    runs = [json.loads(line) for line in records["ENABLED"].read_text().splitlines()]
    assert len(runs) >= 2
    assert {(r["detail-type"], r["source"], tuple(r["resources"])) for r in runs} == {
        ("Scheduled Event", "aws.events", (rule_arn,))}
    assert len({r["id"] for r in runs}) == len(runs)
    assert not records["DISABLED"].exists()
    (poller,) = runner.schedules.values()
    assert poller.schedule.expression == "rate(5 minutes)" and poller.schedule.period == 0.5


HOLDING_HANDLER = '''
import json, os, time

def handler(event, context):
    def record(kind):
        with open(os.environ["RECORD_FILE"], "a") as sink:
            sink.write(json.dumps({"kind": kind, "pid": os.getpid()}) + "\\n")
    record("start")
    while not os.path.exists(os.environ["RELEASE_FILE"]):  # paused until the test releases it
        time.sleep(0.02)
    record("end")
    return {"ok": True}
'''


def test_a_disabled_rule_lets_its_run_in_hand_finish(aws, emulator_url: str, tmp_path: Path):
    """A schedule that changes or goes retires its poller: the run in hand (paused here until the runner
    has followed the change) ends on its worker, as an invocation does on AWS, instead of being killed."""
    lam, events, iam = aws("lambda"), aws("events"), aws("iam")
    role = iam.create_role(RoleName=f"sched-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    name, record, release = f"sched-hold-{uuid.uuid4().hex[:6]}", tmp_path / "runs.jsonl", tmp_path / "release"
    arn = lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="fn.handler",
                              Timeout=30, MemorySize=128, Code={"ZipFile": zip_of({"fn.py": HOLDING_HANDLER})},
                              Environment={"Variables": {"RECORD_FILE": str(record), "RELEASE_FILE": str(release)}}
                              )["FunctionArn"]
    events.put_rule(Name=name, ScheduleExpression="rate(5 minutes)", State="ENABLED")
    events.put_targets(Rule=name, Targets=[{"Id": "fn", "Arn": arn}])
    runner = Runner(emulator_url, cache_dir=tmp_path / "code", log_dir=tmp_path / "logs", poll_wait=1,
                    schedule_seconds=0.5)
    runner.start(refresh_seconds=0.2)
    runner_log = tmp_path / "logs" / "runner.log"
    try:
        wait_until(lambda: record.exists() and '"start"' in record.read_text(), 15, "the scheduled run")
        events.disable_rule(Name=name)
        wait_until(lambda: all(p.schedule.rule_name != name for p in list(runner.schedules.values())), 15,
                   "the runner to follow the change (the emulator may hold other tests' rules)")
        release.touch()
        wait_until(lambda: '"end"' in record.read_text(), 15, "the run in hand to end")
    finally:
        runner.close()

    runs = [json.loads(line) for line in record.read_text().splitlines()]
    assert [r["kind"] for r in runs] == ["start", "end"] and runs[0]["pid"] == runs[1]["pid"]
    assert "scheduled run failed" not in runner_log.read_text()

