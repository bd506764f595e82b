"""Queries: the rows of a manifest (``iter_entries``), of a thing (``rows_for_thing``: index
``by_thing``), and the unfinished manifests, for the
watchdog (``unfinished_manifests`` and ``stalled_manifests``: ``by_state``; ``listed_by_state`` for the
operator's list of every manifest) and for backpressure (``manifests_in_flight``:
besides the index, the starts partition read consistently): the ``Queries`` part of ``AuditTable``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from thingpress.audit.keys import (
    INDEX_BY_STATE,
    INDEX_BY_THING,
    STARTS_PK,
    SUMMARY_SK,
    from_item,
    manifest_pk,
    now_iso,
    to_item,
)
from thingpress.audit.states import STALLED, UNFINISHED_STATES
from thingpress.audit.summaries import Summaries

#: how far back ``manifests_in_flight`` reads the starts besides the index: far beyond AWS's "fraction of
#: a second" for a write to reach a global secondary index (``thingpress.backpressure``).
STARTS_HORIZON_SECONDS = 900
#: how long after a write a reader of the ``by_thing`` index counts on finding it there: twice AWS's
#: "Write operations propagate to a GSI within 1 second" (AWS re:Post,
#: https://repost.aws/knowledge-center/dynamodb-missing-table-items-gsi; the developer guide, GSI.Writes:
#: "within a fraction of a second, under normal conditions"). A lifecycle batch reads the index no sooner
#: than this after it was sent (``thingpress.lifecycle.resolve``).
INDEX_SETTLE_SECONDS = 2.0


class Queries(Summaries):
    """The reads of ``AuditTable`` beyond one summary (they read summaries as ``Summaries`` does)."""

    def rows_for_thing(self, thing_name: str) -> list[dict[str, Any]]:
        """Every certificate row naming ``thing_name``, any manifest (the ``by_thing`` index: eventually
        consistent, a row written less than ``INDEX_SETTLE_SECONDS`` ago may be missing or old)."""
        rows: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table, "IndexName": INDEX_BY_THING, "KeyConditionExpression": "thing_name = :t",
            "ExpressionAttributeValues": to_item({":t": thing_name}),
        }
        rows.extend(self._pages(kwargs))
        return rows

    def unfinished_manifests(self) -> list[dict[str, Any]]:
        """Summaries (as read, with their shards) in ``UNFINISHED_STATES``.

        A query of the ``by_state`` index per state (no scan), then each listed
        manifest's summary read consistently (:meth:`get_summary`): the index is
        eventually consistent and holds the summary item only, while the importer's
        progress is on the shards. Which of them are idle is the caller's to judge on
        what it read (the watchdog: ``thingpress.watchdog``).
        """
        return self._read_in(self.listed_by_state(UNFINISHED_STATES), UNFINISHED_STATES)

    def stalled_manifests(self) -> list[dict[str, Any]]:
        """Summaries (as read, with their shards) in ``STALLED``: listed from the ``by_state`` index,
        then each read consistently (:meth:`get_summary`), those still STALLED."""
        return self._read_in(self.listed_by_state([STALLED]), (STALLED,))

    def manifests_in_flight(self, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """The unfinished manifests the providers' backpressure counts (summaries as read, with their shards).

        :meth:`unfinished_manifests` lists them from the ``by_state`` index, which shows a new
        summary only once the write has propagated to it ("a fraction of a second"); so the
        manifests started in the last ``STARTS_HORIZON_SECONDS`` are read besides, from the
        starts partition with a strongly consistent Query: a manifest whose start was noted
        before this read is counted, however late the index (``thingpress.backpressure``).
        """
        since = now_iso((now or datetime.now(UTC)) - timedelta(seconds=STARTS_HORIZON_SECONDS))
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True, "KeyConditionExpression": "pk = :pk AND sk >= :since",
            "ExpressionAttributeValues": to_item({":pk": STARTS_PK, ":since": since}),
            "ProjectionExpression": "manifest_id",
        }
        started = [row["manifest_id"] for row in self._pages(kwargs)]
        return self._read_in(list(dict.fromkeys([*self.listed_by_state(UNFINISHED_STATES), *started])),
                             UNFINISHED_STATES)

    def listed_by_state(self, states: Iterable[str]) -> list[str]:
        """Manifest ids the ``by_state`` index lists in ``states`` (eventually consistent), newest
        progress last per state: a Query per state, reading summary items only (no certificate row)."""
        listed: list[dict[str, Any]] = []
        for state in states:
            kwargs: dict[str, Any] = {
                "TableName": self.table, "IndexName": INDEX_BY_STATE, "KeyConditionExpression": "#state = :s",
                "ExpressionAttributeNames": {"#state": "state"}, "ExpressionAttributeValues": to_item({":s": state}),
            }
            listed.extend(self._pages(kwargs))
        return list(dict.fromkeys(row["manifest_id"] for row in listed))  # an item moving between states: once

    def _read_in(self, manifest_ids: list[str], states: Iterable[str]) -> list[dict[str, Any]]:
        """The summaries of ``manifest_ids`` read consistently, those still in one of ``states``."""
        rows = []
        for mid in manifest_ids:
            summary = self.get_summary(mid)
            if summary is not None and summary.get("state") in states:
                rows.append(summary)
        return rows

    def entries(self, mid: str) -> list[dict[str, Any]]:
        """Every row of a manifest except the summary, in key order."""
        return list(self.iter_entries(mid))

    def iter_entries(self, mid: str, page_size: int | None = None, *,
                     consistent: bool = False) -> Iterator[dict[str, Any]]:
        """Every row of a manifest except the summary, in key order, one query page at a time.

        ``consistent``: strongly consistent pages (the results writer, right after the last outcome)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "KeyConditionExpression": "pk = :pk AND sk > :s",
            "ExpressionAttributeValues": to_item({":pk": manifest_pk(mid), ":s": SUMMARY_SK}),
        }
        if consistent:
            kwargs["ConsistentRead"] = True
        if page_size:
            kwargs["Limit"] = page_size
        yield from self._pages(kwargs)

    def _pages(self, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The rows of a ``Query``, one page at a time (never all of them in memory)."""
        while True:
            page = self.client.query(**kwargs)
            yield from (from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            kwargs = {**kwargs, "ExclusiveStartKey": page["LastEvaluatedKey"]}
