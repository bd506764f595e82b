"""The completion event (thingpress.events): sent once, by the caller that completed the manifest.

In-process AWS: a real event bus, a rule on ``source`` thingpress and an SQS queue as
its target, so each test counts the events a consumer would receive.
"""

from __future__ import annotations

import json
import threading

import boto3
import pytest
from botocore.exceptions import ClientError

from aws_fixtures import REGION, create_audit_table, in_process_aws
from thingpress import events
from thingpress.audit.states import ALREADY_PRESENT, COMPLETE, FAILED, IMPORTED, QUEUED, REJECTED
from thingpress.audit.summaries import Progress
from thingpress.audit.table import AuditTable
from thingpress.events import CompletionEvents

MID = "generated-0123456789abcdef0123"
BUS = "thingpress-dev-events"
FP = ["1" * 64, "2" * 64, "3" * 64]


class Cloud:
    def __init__(self):
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.events = boto3.client("events", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.table_name = create_audit_table(self.dynamodb)
        self.events.create_event_bus(Name=BUS)
        rule_arn = self.events.put_rule(Name="completed", EventBusName=BUS, EventPattern=json.dumps(
            {"source": [events.SOURCE], "detail-type": [events.MANIFEST_COMPLETED]}))["RuleArn"]
        self.queue_url = self.sqs.create_queue(QueueName="completed")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url,
                                                  AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]})})
        self.events.put_targets(Rule="completed", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])

    def table(self, announcer: object | None = "bus") -> AuditTable:
        """An audit table as a function builds it (``"bus"``: announcing on the test bus)."""
        chosen = CompletionEvents(BUS, self.events) if announcer == "bus" else announcer
        return AuditTable(self.dynamodb, self.table_name, announcer=chosen)  # type: ignore[arg-type]

    def received(self) -> list[dict]:
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def cloud(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    with in_process_aws():
        yield Cloud()


def parsed(table: AuditTable) -> None:
    """Four entries parsed: three queued, one duplicate; nothing recorded yet."""
    table.start_manifest(MID, vendor="generated", bucket="b", key="incoming/generated/x.txt", version="v1",
                         etag="e", size=10, environment="dev")
    assert table.checkpoint(MID, 4, Progress(entries=4, queued=3, duplicates=1), parse_done=True,
                            state=QUEUED, previous=0)


def record(table: AuditTable, fingerprint: str, status: str) -> bool:
    return table.record_outcome(MID, fingerprint, status, vendor="generated", position=FP.index(fingerprint) + 1,
                                thing_name=f"t{fingerprint[0]}")


def test_the_last_outcome_sends_one_event_with_the_counts(cloud):
    table = cloud.table()
    parsed(table)
    record(table, FP[0], IMPORTED)
    record(table, FP[1], ALREADY_PRESENT)
    assert cloud.received() == []  # one outstanding: not complete
    record(table, FP[2], REJECTED)
    [event] = cloud.received()
    assert (event["source"], event["detail-type"]) == ("thingpress", "Manifest Completed")
    detail = event["detail"]
    assert (detail["manifest_id"], detail["vendor"], detail["environment"], detail["state"]) == (
        MID, "generated", "dev", COMPLETE)
    assert detail["counts"] == {"entries": 4, "imported": 1, "already_present": 1, "rejected": 1, "failed": 0,
                                "duplicates": 1}
    # where the results writer, started by this very event, writes the files (thingpress.results)
    assert detail["results"] == {"results_key": f"results/{MID}/results.jsonl",
                                 "errors_key": f"results/{MID}/errors.jsonl"}
    summary = table.get_summary(MID)
    assert summary["completion_event"] == events.SENT and summary["completion_event_id"] == event["id"]


def test_every_later_completion_check_sends_nothing(cloud):
    """The importer's redelivery, the provider finding it parsed, the watchdog: all find it COMPLETE."""
    importer, provider, watchdog = cloud.table(), cloud.table(), cloud.table()
    parsed(provider)
    for fp, status in zip(FP, (IMPORTED, IMPORTED, FAILED), strict=True):
        record(importer, fp, status)
    assert len(cloud.received()) == 1
    assert not record(importer, FP[2], FAILED)  # a redelivered copy
    assert not importer.try_complete(MID) and not provider.try_complete(MID) and not watchdog.try_complete(MID)
    assert cloud.received() == []


def test_two_callers_completing_at_once_send_one_event(cloud):
    """Both pass the outcome check, then race on the conditional update: one wins and sends."""
    parsed(cloud.table())
    for fp in FP:
        assert cloud.table().record_outcome(MID, fp, IMPORTED, vendor="generated", position=1,
                                            thing_name="t", complete=False)
    both_at_update = threading.Barrier(2)

    class AtTheUpdate:
        """The DynamoDB client, holding each caller at try_complete's update until both are there."""

        def __init__(self, client):
            self._client = client

        def __getattr__(self, name):
            return getattr(self._client, name)

        def update_item(self, **kwargs):
            if kwargs.get("ReturnValues") == "ALL_NEW":
                both_at_update.wait(timeout=10)
            return self._client.update_item(**kwargs)

    results: list[bool] = []
    callers = [AuditTable(AtTheUpdate(cloud.dynamodb), cloud.table_name,  # type: ignore[arg-type]
                          announcer=CompletionEvents(BUS, cloud.events)) for _ in range(2)]
    threads = [threading.Thread(target=lambda t=t: results.append(t.try_complete(MID))) for t in callers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]
    assert len(cloud.received()) == 1


def test_a_refused_put_is_recorded_and_not_retried(cloud):
    class Refusing:
        calls = 0

        def publish(self, summary):
            Refusing.calls += 1
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "PutEvents")

    table = cloud.table(Refusing())
    parsed(table)
    for fp in FP:
        record(table, fp, IMPORTED)
    summary = table.get_summary(MID)
    assert summary["state"] == COMPLETE and summary["completion_event"] == events.FAILED
    assert "AccessDeniedException" in summary["completion_event_error"]
    assert not table.try_complete(MID) and Refusing.calls == 1


def test_a_crash_between_completion_and_the_event_leaves_it_pending_and_nobody_resends(cloud):
    """At most once: the function dies after the update; the watchdog later sends nothing."""

    class Dies:
        def publish(self, summary):
            raise SystemExit("function timed out")

    dying = cloud.table(Dies())
    parsed(dying)
    record(dying, FP[0], IMPORTED)
    record(dying, FP[1], IMPORTED)
    with pytest.raises(SystemExit):
        record(dying, FP[2], IMPORTED)
    summary = dying.get_summary(MID)
    assert summary["state"] == COMPLETE and summary["completion_event"] == events.PENDING
    assert not cloud.table().try_complete(MID)
    assert cloud.received() == []


def test_a_table_without_a_bus_completes_silently(cloud):
    table = cloud.table(None)
    parsed(table)
    for fp in FP:
        record(table, fp, IMPORTED)
    summary = table.get_summary(MID)
    assert summary["state"] == COMPLETE and "completion_event" not in summary
    assert cloud.received() == []


def test_an_entry_eventbridge_refuses_raises_event_refused():
    class Answer:
        def put_events(self, Entries):
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "boom"}]}

    with pytest.raises(events.EventRefused, match="InternalFailure: boom"):
        CompletionEvents(BUS, Answer()).publish({"manifest_id": MID})
