"""Global secondary index lag in the local cloud (thingpress_cli.local.emulator.index_lag, wired into emulator.dynamodb).

AWS: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reading ("Queries on
global secondary indexes support eventual consistency only"; changes propagate "within a fraction of a
second, under normal conditions"). In-process moto on a :class:`ManualClock` (the ``index_lag`` fixture):
no sleeps, no threads.
"""

from __future__ import annotations

import json
import urllib.request

import aws_fixtures
import pytest
from aws_fixtures import create_audit_table, in_process_aws

from thingpress.audit.keys import INDEX_BY_STATE, SUMMARY_SK, from_item, manifest_pk, to_item
from thingpress_cli.local.emulator import index_lag
from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.local.emulator.index_lag import INDEX_LAG, IndexLag

TABLE = "lag-audit"


def summary(mid: str, state: str = "RECEIVED", updated_at: str = "2026-01-01T00:00:00Z") -> dict:
    return to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK, "manifest_id": mid,
                          "state": state, "updated_at": updated_at})


def key(mid: str) -> dict:
    return to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK})


def listed(ddb, state: str, table: str = TABLE) -> list[str]:
    """Manifest ids the ``by_state`` index lists under ``state`` (an eventually consistent Query)."""
    page = ddb.query(TableName=table, IndexName=INDEX_BY_STATE, KeyConditionExpression="#s = :s",
                     ExpressionAttributeNames={"#s": "state"}, ExpressionAttributeValues=to_item({":s": state}))
    return sorted(from_item(i)["manifest_id"] for i in page["Items"])


def in_table(ddb, mid: str) -> dict | None:
    got = ddb.get_item(TableName=TABLE, Key=key(mid), ConsistentRead=True).get("Item")
    return from_item(got) if got else None


@pytest.fixture
def ddb(index_lag):
    """A DynamoDB client on in-process moto with an audit-shaped table (its three GSIs)."""
    with in_process_aws():
        client = aws_fixtures.client("dynamodb")
        create_audit_table(client, TABLE)
        yield client


def test_a_new_item_reaches_the_index_only_when_the_lag_is_over(ddb, index_lag):
    index_lag.configure({"lag_ms": 500})
    ddb.put_item(TableName=TABLE, Item=summary("m1"))

    assert listed(ddb, "RECEIVED") == []                       # the index: not yet
    assert in_table(ddb, "m1")["state"] == "RECEIVED"           # the table: at once
    base = ddb.query(TableName=TABLE, ConsistentRead=True, KeyConditionExpression="pk = :pk",
                     ExpressionAttributeValues=to_item({":pk": manifest_pk("m1")}))
    assert base["Count"] == 1
    index_lag.clock.advance(0.499)
    assert listed(ddb, "RECEIVED") == []
    index_lag.clock.advance(0.002)
    assert listed(ddb, "RECEIVED") == ["m1"]
    assert index_lag.report() == {"settings": {"lag_ms": 500.0}, "counts": {"lagged_reads": 2}, "kept": 0}


def test_an_updated_item_keeps_its_old_place_and_attributes_until_the_lag_is_over(ddb, index_lag):
    index_lag.configure({"lag_ms": 500})
    ddb.put_item(TableName=TABLE, Item=summary("m1", "RECEIVED", "2026-01-01T00:00:00Z"))
    index_lag.clock.advance(1)
    ddb.update_item(TableName=TABLE, Key=key("m1"), UpdateExpression="SET #s = :s, updated_at = :t",
                    ExpressionAttributeNames={"#s": "state"},
                    ExpressionAttributeValues=to_item({":s": "PARSING", ":t": "2026-01-01T00:00:09Z"}))
    ddb.update_item(TableName=TABLE, Key=key("m1"), UpdateExpression="SET #s = :s",
                    ExpressionAttributeNames={"#s": "state"}, ExpressionAttributeValues=to_item({":s": "QUEUED"}))

    # As it was before the first write of the last 500 ms: RECEIVED, with its old updated_at.
    assert (listed(ddb, "RECEIVED"), listed(ddb, "PARSING"), listed(ddb, "QUEUED")) == (["m1"], [], [])
    page = ddb.query(TableName=TABLE, IndexName=INDEX_BY_STATE, KeyConditionExpression="#s = :s",
                     ExpressionAttributeNames={"#s": "state"},
                     ExpressionAttributeValues=to_item({":s": "RECEIVED"}))
    assert from_item(page["Items"][0])["updated_at"] == "2026-01-01T00:00:00Z"
    assert in_table(ddb, "m1")["state"] == "QUEUED"
    index_lag.clock.advance(0.5)
    assert (listed(ddb, "RECEIVED"), listed(ddb, "PARSING"), listed(ddb, "QUEUED")) == ([], [], ["m1"])


def test_a_deleted_item_is_still_listed_until_the_lag_is_over(ddb, index_lag):
    index_lag.configure({"lag_ms": 500})
    ddb.put_item(TableName=TABLE, Item=summary("m1"))
    ddb.put_item(TableName=TABLE, Item=summary("m2"))
    index_lag.clock.advance(1)
    ddb.delete_item(TableName=TABLE, Key=key("m1"))

    assert listed(ddb, "RECEIVED") == ["m1", "m2"]
    assert in_table(ddb, "m1") is None
    index_lag.clock.advance(0.5)
    assert listed(ddb, "RECEIVED") == ["m2"]


def test_transactions_and_batch_writes_lag_as_single_writes_do(ddb, index_lag):
    index_lag.configure({"lag_ms": 100})
    ddb.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": summary("t1")}},
                                            {"Put": {"TableName": TABLE, "Item": summary("t2")}}])
    ddb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": summary("b1")}}]})

    assert listed(ddb, "RECEIVED") == []
    index_lag.clock.advance(0.1)
    assert listed(ddb, "RECEIVED") == ["b1", "t1", "t2"]


def test_a_scan_of_an_index_lags_and_a_scan_of_the_table_does_not(ddb, index_lag):
    index_lag.configure({"lag_ms": 500})
    ddb.put_item(TableName=TABLE, Item=summary("m1"))

    assert ddb.scan(TableName=TABLE, IndexName=INDEX_BY_STATE)["Count"] == 0
    assert ddb.scan(TableName=TABLE, ConsistentRead=True)["Count"] == 1
    index_lag.clock.advance(0.5)
    assert ddb.scan(TableName=TABLE, IndexName=INDEX_BY_STATE)["Count"] == 1


def test_the_table_is_left_as_it_is_by_a_lagged_read(ddb, index_lag):
    """The past is put in place for the one request only: later writes and reads see the table as it is."""
    index_lag.configure({"lag_ms": 500})
    ddb.put_item(TableName=TABLE, Item=summary("m1"))
    ddb.put_item(TableName=TABLE, Item=to_item({"pk": manifest_pk("m1"), "sk": "C#fp", "status": "IMPORTED",
                                                      "updated_at": "2026-01-01T00:00:00Z"}))
    assert listed(ddb, "RECEIVED") == []
    ddb.update_item(TableName=TABLE, Key=key("m1"), UpdateExpression="SET n = :n",
                    ExpressionAttributeValues=to_item({":n": 1}))
    partition = ddb.query(TableName=TABLE, ConsistentRead=True, KeyConditionExpression="pk = :pk",
                          ExpressionAttributeValues=to_item({":pk": manifest_pk("m1")}))
    assert sorted(from_item(i)["sk"] for i in partition["Items"]) == ["#SUMMARY", "C#fp"]
    assert in_table(ddb, "m1")["n"] == 1


def test_without_a_lag_the_index_is_current(ddb, index_lag):
    """Off (the default of a process, and of in-process unit tests): moto's own behaviour."""
    assert not index_lag.active
    ddb.put_item(TableName=TABLE, Item=summary("m1"))
    assert listed(ddb, "RECEIVED") == ["m1"]
    assert index_lag.report() == {"settings": {"lag_ms": 0.0}, "counts": {"lagged_reads": 0}, "kept": 0}


@pytest.mark.parametrize("settings, refusal", [
    ({"lag": 25}, "unknown index lag settings: lag"),
    ({"lag_ms": -1}, "lag_ms is 0..60000"),
    ({"lag_ms": 60_001}, "lag_ms is 0..60000"),
    ({"lag_ms": "soon"}, "could not convert"),
    ({"lag_ms": float("nan")}, "lag_ms is 0..60000"),
])
def test_configure_refuses_bad_settings_and_keeps_the_current_ones(index_lag, settings, refusal):
    index_lag.configure({"lag_ms": 40})
    with pytest.raises(ValueError, match=refusal):
        index_lag.configure(settings)
    assert index_lag.report()["settings"] == {"lag_ms": 40.0}


def test_the_lag_setting_is_read_from_the_environment():
    assert index_lag.from_environment({index_lag.LAG_SETTING: "900"}) == {"lag_ms": 900.0}
    assert index_lag.from_environment({index_lag.LAG_SETTING: "0"}) == {"lag_ms": 0.0}
    assert index_lag.from_environment({index_lag.LAG_SETTING: ""}) == {"lag_ms": index_lag.EMULATOR_LAG_MS}
    assert index_lag.from_environment({}) == {"lag_ms": 250.0}  # AWS-like: "a fraction of a second"


def test_reset_turns_the_lag_off_and_forgets_what_was_kept():
    lag = IndexLag(clock=lambda: 5.0)
    lag.configure({"lag_ms": 100})
    lag.reset()
    assert not lag.active and lag.report() == {"settings": {"lag_ms": 0.0}, "counts": {"lagged_reads": 0}, "kept": 0}


def test_lag_set_in_a_test(ddb, index_lag):
    """With the next test: the ``index_lag`` fixture leaves nothing behind (they run in file order)."""
    index_lag.configure({"lag_ms": 500})
    ddb.put_item(TableName=TABLE, Item=summary("m1"))
    assert index_lag.report()["kept"] == 1


def test_nothing_leaks_into_the_next_test():
    assert not INDEX_LAG.active
    assert INDEX_LAG.report() == {"settings": {"lag_ms": 0.0}, "counts": {"lagged_reads": 0}, "kept": 0}


@pytest.fixture
def emulator_lag(emulator_url):
    """Change the emulator's index lag for one test; back to its start-up setting afterwards."""
    with urllib.request.urlopen(f"{emulator_url}{index_lag.LAG_PATH}", timeout=5) as answer:
        before = json.loads(answer.read())["settings"]
    yield lambda settings: emulator.set_index_lag(emulator_url, settings)
    emulator.set_index_lag(emulator_url, before)


def test_the_emulator_lags_its_indexes_as_set_at_its_endpoint(aws, emulator_lag):
    """Over HTTP (moto server + waitress): the same answers, and the endpoint shows and refuses settings."""
    ddb = aws("dynamodb")
    create_audit_table(ddb, "lag-emulator")
    assert emulator_lag({"lag_ms": 60_000})["settings"] == {"lag_ms": 60_000.0}  # a minute: surely within it
    ddb.put_item(TableName="lag-emulator", Item=summary("e1"))

    assert listed(ddb, "RECEIVED", table="lag-emulator") == []
    assert ddb.get_item(TableName="lag-emulator", Key=key("e1"), ConsistentRead=True)["Item"]
    with pytest.raises(ValueError, match="lag_ms is 0..60000"):
        emulator_lag({"lag_ms": -5})
    emulator_lag({"lag_ms": 0})
    assert listed(ddb, "RECEIVED", table="lag-emulator") == ["e1"]
