"""The manifests in flight as the providers' backpressure reads them (``AuditTable.manifests_in_flight``).

The ``by_state`` index lags (in-process moto lags it here as AWS does: the ``index_lag`` fixture, a manual
clock); the starts partition is read consistently, so a manifest started a moment ago is counted anyway.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aws_fixtures
import pytest
from aws_fixtures import create_audit_table, in_process_aws

from thingpress.audit.keys import STARTS_PK, from_item, to_item
from thingpress.audit.queries import STARTS_HORIZON_SECONDS
from thingpress.audit.states import COMPLETE, PARSING
from thingpress.audit.summaries import STARTS_TTL_SECONDS, Progress
from thingpress.audit.table import AuditTable


@pytest.fixture
def table(index_lag):
    with in_process_aws():
        client = aws_fixtures.client("dynamodb")
        yield AuditTable(client, create_audit_table(client, "starts-audit"))


def start(table: AuditTable, mid: str, now: datetime | None = None) -> dict:
    return table.start_manifest(mid, vendor="generated", bucket="b", key=f"{mid}.txt", version="v1", etag="e",
                                size=1, now=now)


def ids(rows: list[dict]) -> list[str]:
    return sorted(r["manifest_id"] for r in rows)


def test_a_manifest_started_within_the_lag_is_in_flight_though_the_index_does_not_list_it(table, index_lag):
    index_lag.configure({"lag_ms": 500})
    start(table, "m1")
    table.checkpoint("m1", 3, Progress(entries=3, queued=3))

    assert table.unfinished_manifests() == []
    [m1] = table.manifests_in_flight()
    assert (m1["manifest_id"], m1["state"], m1["outstanding"]) == ("m1", PARSING, 3)  # as it is now


def test_a_manifest_listed_by_the_index_and_the_starts_is_counted_once(table, index_lag):
    index_lag.configure({"lag_ms": 500})
    start(table, "m1")
    index_lag.clock.advance(1)
    start(table, "m2")

    assert ids(table.unfinished_manifests()) == ["m1"]
    assert [r["manifest_id"] for r in table.manifests_in_flight()].count("m1") == 1
    assert ids(table.manifests_in_flight()) == ["m1", "m2"]


def test_finished_manifests_are_not_in_flight_and_old_starts_are_not_read(table, index_lag):
    index_lag.configure({"lag_ms": 500})  # nothing written here is in the index yet
    start(table, "done")
    table.checkpoint("done", 1, Progress(entries=1, duplicates=1), parse_done=True)
    assert table.get_summary("done")["state"] == COMPLETE
    long_ago = datetime.now(UTC) - timedelta(seconds=STARTS_HORIZON_SECONDS + 60)
    start(table, "old", now=long_ago)
    start(table, "new")

    starts = table.client.query(TableName=table.table, ConsistentRead=True, KeyConditionExpression="pk = :pk",
                                ExpressionAttributeValues=to_item({":pk": STARTS_PK}))["Items"]
    assert sorted(from_item(i)["manifest_id"] for i in starts) == ["done", "new", "old"]
    # Only the starts of the last STARTS_HORIZON_SECONDS are read: "old" is left to the index.
    assert ids(table.manifests_in_flight()) == ["new"]
    assert ids(table.manifests_in_flight(now=long_ago + timedelta(seconds=1))) == ["new", "old"]
    index_lag.clock.advance(0.5)
    assert ids(table.manifests_in_flight()) == ["new", "old"]


def test_a_start_row_names_the_first_start_holds_no_index_attribute_and_expires_in_a_day(table):
    first = start(table, "m1")
    start(table, "m1")  # a redelivered S3 event: the same row again

    rows = table.client.query(TableName=table.table, ConsistentRead=True, KeyConditionExpression="pk = :pk",
                              ExpressionAttributeValues=to_item({":pk": STARTS_PK}))["Items"]
    [row] = [from_item(i) for i in rows]
    assert row["sk"] == f"{first['started_at']}#m1"
    assert not {"state", "status", "thing_name"} & set(row)
    assert 0 < row["expires_at"] - datetime.now(UTC).timestamp() <= STARTS_TTL_SECONDS
    assert table.entries("m1") == []  # the manifest's own partition is unchanged
