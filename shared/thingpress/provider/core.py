"""The provider's pure core: one chunk of a manifest, from a cursor, as far as it may go.

No AWS here. ``run_chunk`` takes the parsed entries (each with the cursor after it,
``thingpress.cursor``), where the chunk starts, the pacing, and ``Ports``: the few
things it needs from outside, which the provider adapts to S3, SQS and DynamoDB
(``thingpress.provider``) and the tests to plain lists. In order, it

1. asks ``ports.room_for(summary)`` how many entries it may enqueue now (None: no
   limit; 0: pause, nothing is read). This is the one seam where a backpressure
   window limits or vetoes a stretch;
2. skips the entries up to ``skip_to`` (a format that cannot be entered part-way,
   or an old checkpoint without a cursor) without counting them, claiming their
   certificates again only when ``reclaim`` (old checkpoints kept no claims);
3. takes entries one at a time, checking the deadline (``ports.time_is_up``) and
   the entry limit between any two; every ``claim_batch`` entries it *settles*
   them: prepares each certificate's import message (``ports.prepare``: a message
   that cannot be sent, e.g. a thing name IoT would refuse, refuses its entry), claims
   the certificates of the prepared ones only (``ports.claim``: a certificate whose
   claim an earlier position holds is a duplicate, counted, not sent), refuses what
   the parser refused, sends the rest (``ports.send``). A refused entry never holds a
   claim, so a later copy of its certificate is sent, not taken for its duplicate;
4. commits (``ports.commit``) after ``checkpoint_every`` entries or
   ``checkpoint_seconds``, and when it stops: at the end of the file (final, with
   the whole manifest's note), or at the limit or deadline (outcome ``chunked``);
   a refused commit means another invocation is ahead (outcome ``behind``).

The counts committed are exactly the entries settled since the previous commit,
so a chunk replayed after a crash never counts anything twice, and memory does not
grow with the manifest: at most ``claim_batch`` entries and one stretch of refusal
rows are held at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from thingpress.audit.summaries import Progress
from thingpress.cursor import Cursor
from thingpress.manifest import checked, note_for
from thingpress.records import Certificate, Entry, Refusal


@dataclass(frozen=True, slots=True)
class Pace:
    """How far one chunk goes and how often it commits."""

    #: commit at least every this many entries ...
    checkpoint_every: int = 500
    #: ... and at least every this many seconds.
    checkpoint_seconds: float = 2.0
    #: stop (and hand over to a continuation) after this many entries.
    max_entries: int = 100_000
    #: entries settled together: one claim call for their certificates.
    claim_batch: int = 100


@dataclass(slots=True)
class Stretch:
    """What was settled since the last commit (uncommitted)."""

    entries: int = 0
    duplicates: int = 0
    queued: int = 0
    no_certificates: int = 0
    refusals: list[dict[str, Any]] = field(default_factory=list)

    def progress(self) -> Progress:
        return Progress(entries=self.entries, duplicates=self.duplicates, queued=self.queued,
                        rejected=len(self.refusals), no_certificates=self.no_certificates)


@dataclass(frozen=True, slots=True)
class Commit:
    """One commit the core asks for: progress up to ``position``, reading resumes at ``cursor``."""

    position: int
    previous: int
    cursor: Cursor | None
    stretch: Stretch
    final: bool = False
    #: final commits: why the manifest imports nothing, if it does not (``manifest.note_for``).
    note: str | None = None


class Ports(Protocol):
    """What the core needs from outside (``thingpress.provider`` adapts these to AWS)."""

    def room_for(self, summary: dict[str, Any]) -> int | None:
        """How many more entries this manifest may enqueue now; None: no limit."""

    def claim(self, claims: list[tuple[str, int]]) -> dict[int, int]:
        """Claim ``(fingerprint, position)`` pairs; ``{position: earlier position}`` for duplicates."""

    def prepare(self, entry: Certificate) -> str | None:
        """Prepare one certificate's import message; a reason string if the entry is refused instead."""

    def send(self, entry: Certificate) -> None:
        """Enqueue the import message ``prepare`` made for ``entry``."""

    def commit(self, commit: Commit) -> bool:
        """Make the sends and refusals durable, then checkpoint; False: another invocation is ahead."""

    def time_is_up(self) -> bool:
        """True when the invocation must hand over now."""


@dataclass(slots=True)
class ChunkResult:
    """What ``run_chunk`` did: outcome complete, chunked, behind or paused; counts committed."""

    outcome: str
    position: int
    entries: int = 0
    queued: int = 0
    duplicates: int = 0
    rejected: int = 0
    note: str | None = None


def refusal_row(entry: Refusal) -> dict[str, Any]:
    """The audit refusal row of a refused entry."""
    return {"position": entry.position, "reason": entry.reason, "thing_name": entry.thing_name,
            "fingerprint": entry.fingerprint}


class _Chunk:
    """The state of one ``run_chunk`` call."""

    def __init__(self, ports: Ports, start: int, totals: Progress, clock: Callable[[], float]):
        self.ports = ports
        self.clock = clock
        self.result = ChunkResult("complete", start)
        self.committed = start
        self.cursor: Cursor | None = None
        self.stretch = Stretch()
        self.pending: list[tuple[Entry, Cursor | None]] = []
        self.totals = totals
        self.last_commit = clock()

    def settle(self) -> None:
        """Claim, refuse or send the pending entries, in order."""
        if not self.pending:
            return
        refused = {e.position: reason for e, _ in self.pending
                   if isinstance(e, Certificate) and (reason := self.ports.prepare(e)) is not None}
        claims = [(e.fingerprint, e.position) for e, _ in self.pending
                  if isinstance(e, Certificate) and e.position not in refused]
        duplicates = self.ports.claim(claims) if claims else {}
        stretch = self.stretch
        for entry, after in self.pending:
            stretch.entries += 1
            if isinstance(entry, Refusal):
                stretch.refusals.append(refusal_row(entry))
                if entry.kind == "no_certificate":
                    stretch.no_certificates += 1
            elif entry.position in refused:
                stretch.refusals.append({"position": entry.position,
                                         "reason": f"entry {entry.position}: {refused[entry.position]}",
                                         "thing_name": entry.thing_name, "fingerprint": entry.fingerprint})
            elif entry.position in duplicates:
                stretch.duplicates += 1
            else:
                self.ports.send(entry)
                stretch.queued += 1
            self.result.position = entry.position
            self.cursor = after
        self.pending = []

    def commit(self, *, final: bool = False) -> bool:
        self.settle()
        stretch = self.stretch
        if not final and stretch.entries == 0:
            return True
        note = None
        if final:
            t = self.totals
            note = note_for(t.entries + stretch.entries, t.duplicates + stretch.duplicates,
                            t.rejected + len(stretch.refusals), t.no_certificates + stretch.no_certificates)
        if not self.ports.commit(Commit(self.result.position, self.committed, self.cursor, stretch, final, note)):
            return False
        progress = stretch.progress()
        r = self.result
        r.entries += progress.entries
        r.queued += progress.queued
        r.duplicates += progress.duplicates
        r.rejected += progress.rejected
        r.note = note
        self.totals = Progress(self.totals.entries + progress.entries, self.totals.duplicates + progress.duplicates,
                               self.totals.queued + progress.queued, self.totals.rejected + progress.rejected,
                               self.totals.no_certificates + progress.no_certificates)
        self.committed = self.result.position
        self.stretch = Stretch()
        self.last_commit = self.clock()
        return True


def run_chunk(entries: Iterable[tuple[Entry, Cursor | None]], *, start: int, ports: Ports, pace: Pace,
              summary: dict[str, Any], totals: Progress | None = None, skip_to: int = 0, reclaim: bool = False,
              clock: Callable[[], float]) -> ChunkResult:
    """Run one chunk: entries after position ``start`` (see the module docstring).

    ``entries`` yields ``(entry, cursor after it)`` from where the chunk starts reading;
    ``skip_to`` > 0 when that is before ``start`` (entries up to it are skipped);
    ``totals``: what earlier chunks committed (for the final note).
    """
    room = ports.room_for(summary)
    limit = pace.max_entries if room is None else min(pace.max_entries, room)
    if limit <= 0:
        return ChunkResult("paused", start)
    chunk = _Chunk(ports, start, totals or Progress(), clock)
    handled = 0
    reclaims: list[tuple[str, int]] = []
    for entry, after in entries:
        if entry.position <= skip_to:
            if reclaim and isinstance(entry, Certificate):
                reclaims.append((entry.fingerprint, entry.position))
                if len(reclaims) >= pace.claim_batch:
                    ports.claim(reclaims)
                    reclaims = []
            continue
        if reclaims:
            ports.claim(reclaims)
            reclaims = []
        chunk.pending.append((checked(entry), after))
        handled += 1
        if len(chunk.pending) >= pace.claim_batch:
            chunk.settle()
        if (chunk.stretch.entries + len(chunk.pending) >= pace.checkpoint_every
                or clock() - chunk.last_commit >= pace.checkpoint_seconds):
            if not chunk.commit():
                chunk.result.outcome = "behind"
                return chunk.result
        if handled >= limit or ports.time_is_up():
            if not chunk.commit():
                chunk.result.outcome = "behind"
                return chunk.result
            # The room is used up: the window is full, pause (else carry on in the next invocation).
            chunk.result.outcome = "paused" if room is not None and handled >= room else "chunked"
            return chunk.result
    if reclaims:
        ports.claim(reclaims)
    if not chunk.commit(final=True):
        chunk.result.outcome = "behind"
    return chunk.result
