"""The emulator's usage meter: DynamoDB request units as the developer guide counts them, SQS's 64 KB chunks."""

from __future__ import annotations

import io

from aws_fixtures import client, create_audit_table, in_process_aws

from thingpress.audit.keys import INDEX_BY_THING, to_item
from thingpress_cli.local.emulator import usage
from thingpress_cli.local.emulator.usage import USAGE, count_request, kind, totals


def _report_after(action) -> dict:
    USAGE.reset()
    action()
    return USAGE.report()["dynamodb"]


def test_a_small_put_is_one_unit_and_one_per_index_it_enters():
    with in_process_aws():
        ddb = client("dynamodb")
        table = create_audit_table(ddb)
        row = {"pk": "M#m1", "sk": "C#abc", "status": "IMPORTED", "thing_name": "t1", "updated_at": "2026"}
        found = _report_after(lambda: ddb.put_item(TableName=table, Item=to_item(row)))
        assert found["write_units"] == {"M#/C#": 1}
        # in by_thing (it has its keys), not in by_state (no "state")
        assert found["index_write_units"] == {"by_thing": 1}


def test_units_round_up_per_kilobyte_and_a_transaction_counts_twice():
    with in_process_aws():
        ddb = client("dynamodb")
        table = create_audit_table(ddb)
        big = {"pk": "D#m1", "sk": "C#big", "blob": "x" * 1500}  # about 1.5 KB: 2 units
        small = {"pk": "D#m1", "sk": "C#small"}
        found = _report_after(lambda: ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": to_item(big)}},
            {"Put": {"TableName": table, "Item": to_item(small)}}]))
        assert found["write_units"] == {"D#/C#": 2 * 2 + 2 * 1}
        assert found["index_write_units"] == {}  # a claim carries no index key


def test_an_update_that_leaves_the_index_entry_alone_writes_no_index_and_a_key_change_writes_it_twice():
    with in_process_aws():
        ddb = client("dynamodb")
        table = create_audit_table(ddb)
        key = to_item({"pk": "M#m1", "sk": "C#abc"})
        ddb.put_item(TableName=table, Item=to_item({"pk": "M#m1", "sk": "C#abc", "thing_name": "t1",
                                                    "updated_at": "2026-01-01"}))
        same = _report_after(lambda: ddb.update_item(TableName=table, Key=key, UpdateExpression="SET note = :n",
                                                     ExpressionAttributeValues=to_item({":n": "x"})))
        # by_thing projects ALL: the new attribute changes its entry (1 write); nothing else indexes it
        assert same["index_write_units"] == {INDEX_BY_THING: 1}
        moved = _report_after(lambda: ddb.update_item(TableName=table, Key=key, UpdateExpression="SET #t = :t",
                                                      ExpressionAttributeNames={"#t": "thing_name"},
                                                      ExpressionAttributeValues=to_item({":t": "t2"})))
        assert moved["index_write_units"] == {INDEX_BY_THING: 2}  # delete the old entry, put the new


def test_reads_are_per_four_kilobytes_half_when_eventually_consistent():
    with in_process_aws():
        ddb = client("dynamodb")
        table = create_audit_table(ddb)
        ddb.put_item(TableName=table, Item=to_item({"pk": "M#m1", "sk": "#SUMMARY", "state": "QUEUED",
                                                    "updated_at": "2026", "blob": "y" * 5000}))
        key = to_item({"pk": "M#m1", "sk": "#SUMMARY"})
        strong = _report_after(lambda: ddb.get_item(TableName=table, Key=key, ConsistentRead=True))
        eventual = _report_after(lambda: ddb.get_item(TableName=table, Key=key))
        assert strong["read_units"] == {f"GetItem {table}": 2}  # 5 KB: two 4 KB units
        assert eventual["read_units"] == {f"GetItem {table}": 1}
        index = _report_after(lambda: ddb.query(TableName=table, IndexName="by_state", ConsistentRead=False,
                                                KeyConditionExpression="#s = :s", ExpressionAttributeNames={"#s": "state"},
                                                ExpressionAttributeValues=to_item({":s": "QUEUED"})))
        assert index["read_units"] == {"Query by_state": 1}
        assert totals({"dynamodb": index, "requests": {}}) == {"write_units": 0, "read_units": 1}


def test_sqs_requests_are_billed_per_64_kb_chunk():
    USAGE.reset()
    for length in (100, 64 * 1024, 64 * 1024 + 1, 200 * 1024):
        count_request({"HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/sqs/aws4_request, x",
                       "HTTP_X_AMZ_TARGET": "AmazonSQS.SendMessageBatch", "CONTENT_LENGTH": str(length),
                       "wsgi.input": io.BytesIO()})
    report = USAGE.report()
    assert report["requests"] == {"sqs SendMessageBatch": 4}
    assert report["sqs_billed_requests"] == 1 + 1 + 2 + 4
    assert usage.requests_of(report, "sqs") == 4


def test_receives_that_find_no_message_are_counted_apart():
    with in_process_aws():
        sqs = client("sqs")
        url = sqs.create_queue(QueueName="metered")["QueueUrl"]
        USAGE.reset()
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
        sqs.send_message(QueueUrl=url, MessageBody="work")
        assert len(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)["Messages"]) == 1
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
        assert USAGE.report()["sqs_empty_receives"] == 2


def test_item_kinds_name_key_prefixes_not_values():
    assert kind("M#generated-ab", "C#fp") == "M#/C#"
    assert kind("M#generated-ab", "#SHARD#03") == "M#/#SHARD#"
    assert kind("M#generated-ab", "#SUMMARY") == "M#/#SUMMARY"
    assert kind("D#generated-ab", "C#fp") == "D#/C#"
    assert kind("D#generated-ab", "3fa9c0") == "D#/*"  # a claim's sort key is the fingerprint itself
    assert kind("S#STARTS", "2026-12-06T07:29:59Z#generated-ab") == "S#/*"


def test_the_runner_writes_lambdas_report_line_and_billing_reads_it():
    from thingpress_cli.local.runner.workers import billed, report_line

    lines = [report_line("r1", 1500.2, 512), "a function's own line", report_line("r2", 0.4, 1024)]
    assert lines[0] == "REPORT RequestId: r1\tDuration: 1500.20 ms\tBilled Duration: 1501 ms\tMemory Size: 512 MB"
    invocations, gb_seconds = billed(lines)
    assert invocations == 2
    assert gb_seconds == 1.501 * 0.5 + 0.001 * 1.0
