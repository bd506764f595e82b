"""The provider's pure core (``thingpress.provider.core.run_chunk``) with plain lists for ports: no AWS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from thingpress.audit.summaries import Progress
from thingpress.cursor import Cursor
from thingpress.provider.core import Commit, Pace, run_chunk
from thingpress.records import Certificate, Entry, Refusal

T = datetime(2026, 1, 1, tzinfo=UTC)


def cert(position: int, fingerprint: str) -> Certificate:
    return Certificate(position, f"thing-{position}", "PEM", fingerprint, T, T)


class ListPorts:
    """Ports over plain lists and dicts: claims in a dict, sends and commits in lists."""

    def __init__(self, *, room: int | None = None, up_after: int | None = None, ahead_at: int | None = None,
                 too_large: frozenset[int] = frozenset()):
        self.claims: dict[str, int] = {}
        self.sent: list[int] = []
        self.buffered: list[int] = []
        self.commits: list[Commit] = []
        self.room, self.up_after, self.ahead_at, self.too_large = room, up_after, ahead_at, too_large
        self.checks = 0
        self.claim_calls = 0

    def room_for(self, summary: dict[str, Any]) -> int | None:
        return self.room

    def claim(self, claims: list[tuple[str, int]]) -> dict[int, int]:
        self.claim_calls += 1
        duplicates = {}
        for fingerprint, position in claims:
            held = self.claims.setdefault(fingerprint, position)
            if held != position:
                duplicates[position] = held
        return duplicates

    def prepare(self, entry: Certificate) -> str | None:
        return "message is too large" if entry.position in self.too_large else None

    def send(self, entry: Certificate) -> None:
        assert entry.position not in self.too_large, "a refused entry was sent"
        self.buffered.append(entry.position)

    def commit(self, commit: Commit) -> bool:
        if self.ahead_at is not None and commit.position >= self.ahead_at:
            return False
        self.sent += self.buffered
        self.buffered = []
        self.commits.append(commit)
        return True

    def time_is_up(self) -> bool:
        self.checks += 1
        return self.up_after is not None and self.checks >= self.up_after


def with_cursors(entries: list[Entry]) -> list[tuple[Entry, Cursor]]:
    """Entries as a parser yields them: each with the cursor after it (10 bytes per entry)."""
    return [(e, Cursor(e.position, 10 * e.position, e.position)) for e in entries]


def run(entries: list[Entry], ports: ListPorts, *, start: int = 0, pace: Pace | None = None, **kw: Any) -> Any:
    return run_chunk(with_cursors(entries)[kw.pop("from_index", start):], start=start, ports=ports,
                     pace=pace or Pace(), summary={}, clock=lambda: 0.0, **kw)


def test_one_pass_sends_every_certificate_and_commits_once_with_the_final_cursor():
    ports = ListPorts()
    result = run([cert(i, f"f{i}") for i in range(1, 6)], ports)
    assert (result.outcome, result.entries, result.queued) == ("complete", 5, 5)
    assert ports.sent == [1, 2, 3, 4, 5]
    [final] = ports.commits
    assert (final.position, final.previous, final.cursor, final.final, final.note) == (5, 0, Cursor(5, 50, 5), True,
                                                                                        None)


def test_a_chunk_stops_at_its_limit_and_the_next_starts_at_the_cursor():
    entries = [cert(i, f"f{i}") for i in range(1, 8)]
    ports = ListPorts()
    first = run(entries, ports, pace=Pace(max_entries=3))
    assert (first.outcome, first.position) == ("chunked", 3)
    assert ports.commits[-1].cursor == Cursor(3, 30, 3)
    second = run(entries, ports, start=3, pace=Pace(max_entries=3))
    third = run(entries, ports, start=6, pace=Pace(max_entries=3))
    assert (second.outcome, third.outcome) == ("chunked", "complete")
    assert ports.sent == [1, 2, 3, 4, 5, 6, 7]
    assert [(c.previous, c.position) for c in ports.commits] == [(0, 3), (3, 6), (6, 7)]


def test_the_deadline_is_checked_between_any_two_entries():
    ports = ListPorts(up_after=2)
    result = run([cert(i, f"f{i}") for i in range(1, 10)], ports)
    assert (result.outcome, result.position, ports.sent) == ("chunked", 2, [1, 2])


def test_a_repeated_certificate_is_a_duplicate_of_its_first_position_across_chunks():
    entries = [cert(1, "a"), cert(2, "b"), cert(3, "a"), cert(4, "c"), cert(5, "b"), cert(6, "a")]
    ports = ListPorts()
    run(entries, ports, pace=Pace(max_entries=2))
    run(entries, ports, start=2, pace=Pace(max_entries=2))
    last = run(entries, ports, start=4, pace=Pace(max_entries=2))
    assert ports.sent == [1, 2, 4]
    assert [c.stretch.duplicates for c in ports.commits] == [0, 1, 2]
    assert last.duplicates == 2


def test_a_replayed_chunk_claims_its_own_positions_again_without_calling_them_duplicates():
    entries = [cert(1, "a"), cert(2, "b")]
    ports = ListPorts(ahead_at=2)  # the first attempt's commit is lost: replayed from the same start
    assert run(entries, ports).outcome == "behind"
    ports.ahead_at, ports.buffered = None, []
    again = run(entries, ports)
    assert (again.outcome, again.queued, again.duplicates) == ("complete", 2, 0)


def test_refusals_and_too_large_messages_are_counted_as_rejected_with_their_reasons():
    entries: list[Entry] = [cert(1, "a"), Refusal(2, "line 2: not standard base64", kind="malformed"), cert(3, "c")]
    ports = ListPorts(too_large=frozenset({3}))
    result = run(entries, ports)
    assert (result.entries, result.queued, result.rejected) == (3, 1, 2)
    assert [(r["position"], r["reason"]) for r in ports.commits[-1].stretch.refusals] == [
        (2, "line 2: not standard base64"), (3, "entry 3: message is too large")]


def test_the_common_thing_name_rule_applies():
    ports = ListPorts()
    bad = Certificate(1, "bad name!", "PEM", "a", T, T)
    result = run([bad], ports)
    [row] = ports.commits[-1].stretch.refusals
    assert result.rejected == 1 and row["reason"].startswith("entry 1: ")


def test_the_final_note_counts_the_whole_manifest_not_only_this_chunk():
    ports = ListPorts()
    entries: list[Entry] = [Refusal(i, f"entry {i}: signed entry carries no device certificate", kind="no_certificate")
                            for i in range(1, 4)]
    result = run(entries, ports, start=2, from_index=2, totals=Progress(entries=2, rejected=2, no_certificates=2))
    assert result.note == ("signed manifest holds no device certificates: all 3 entries carry none, "
                           "nothing to import")


def test_no_room_pauses_before_reading_anything_and_room_limits_the_stretch():
    def untouched() -> Iterator[tuple[Entry, Cursor]]:
        raise AssertionError("read although there is no room")
        yield  # pragma: no cover

    ports = ListPorts(room=0)
    paused = run_chunk(untouched(), start=4, ports=ports, pace=Pace(), summary={"checkpoint": 4}, clock=lambda: 0.0)
    assert (paused.outcome, paused.position, ports.commits) == ("paused", 4, [])
    ports.room = 2
    limited = run([cert(i, f"f{i}") for i in range(1, 6)], ports)
    assert (limited.outcome, ports.sent) == ("paused", [1, 2])  # the room used up: the window is full


def test_skipping_to_an_old_checkpoint_reclaims_the_prefix_so_later_duplicates_are_found():
    entries = [cert(1, "a"), cert(2, "b"), cert(3, "a")]
    ports = ListPorts()
    result = run(entries, ports, start=2, from_index=0, skip_to=2, reclaim=True)  # read from the top, no claims stored
    assert (result.entries, result.queued, result.duplicates) == (1, 0, 1)
    assert ports.claims == {"a": 1, "b": 2}


def test_claims_are_batched():
    ports = ListPorts()
    run([cert(i, f"f{i}") for i in range(1, 251)], ports, pace=Pace(claim_batch=100, checkpoint_every=1000))
    assert ports.claim_calls == 3


def test_an_entry_refused_at_send_holds_no_claim_so_a_later_copy_is_sent():
    """Issue 21, defect 1: the claim used to be taken before the send refused the entry, so a later copy
    of the certificate counted as a duplicate of the refused position and was never imported."""
    ports = ListPorts(too_large=frozenset({1}))
    result = run([cert(1, "X"), cert(2, "X"), cert(3, "Y")], ports, pace=Pace(claim_batch=2))

    assert (result.entries, result.queued, result.duplicates, result.rejected) == (3, 2, 0, 1)
    assert ports.sent == [2, 3]
    assert ports.claims == {"X": 2, "Y": 3}
    assert [r["position"] for r in ports.commits[-1].stretch.refusals] == [1]
