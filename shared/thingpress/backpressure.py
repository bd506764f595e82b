"""Backpressure and a fair share: how many certificates a manifest may enqueue now.

The provider parses far faster than the importer imports (AWS's default budget for
``RegisterCertificateWithoutCA`` is 10 certificates per second). Without a limit a
large manifest would fill the import queue with days of work, every later manifest
would wait behind it (one queue, roughly first in first out), and whatever sat in
the queue longer than its retention would expire unseen.

The window
----------
So the import queue holds at most a **window** of work: ``window_minutes`` (the
setting ``THINGPRESS_IMPORT_WINDOW_MINUTES``, default 1) times the importer's
certificate rate, the slowest IoT API of its budget (``THINGPRESS_IOT_TPS``, the
importer's own setting; the stack passes both to the providers):

    window = floor(window_minutes * 60 * min(iot_tps.values()))     # 600 by default

This module is the one place that computes it (:func:`window_for`).

Why one minute: a manifest uploaded behind a large one waits for about one window of
the large one's queued work (below), so the window *is* the wait: at the default
budget a 40-certificate manifest behind a 100,000-certificate one finishes in about
a minute (58.7 s measured by ``tests/benchmarks/bench_fairness.py``, goal 90 s; the
earlier default of 10 minutes made one wait 284 s behind a mere 3,000 certificates, 40x
its time alone). A smaller window would starve the importer: a paused manifest
refills when a quarter of its share is free, so the queue must hold the work
the importer does while a provider wakes up, reads and sends (seconds); at one minute a
refill starts with three quarters of a minute still queued, and the importer stays at its
budget (``importer_saturation`` in the same benchmark, goal 0.95). The window scales with
the budget in certificates, not in time: one minute at 100/s is 6,000.

A fair share
------------
The window is shared by the manifests still being parsed (state ``RECEIVED`` or
``PARSING``: a parsed manifest enqueues nothing more):

    share = max(min(MIN_SHARE, window), window // parsing)

and a manifest may enqueue while both its own and the global count allow it:

    room = min(share - own_outstanding, window - own_outstanding - others_outstanding)

``outstanding`` is the audit summary's counter: certificates queued minus those
with an outcome (``AuditTable.checkpoint`` adds, every outcome subtracts), so it is
exactly what a manifest has in the import queue (or in an importer's hands). The
others are read once per invocation (:class:`Backpressure` caches them:
``AuditTable.manifests_in_flight``): the manifests the audit table's ``by_state`` index
lists, plus every manifest started in the last 15 minutes, from a partition of starts
read with a strongly consistent Query (see "What the bound assumes"), each one's
summary read consistently; a manifest's own figure from its consistently read summary.

A small manifest arriving behind a large one therefore waits for at most about one
window of the large one's work, not for the whole large manifest; and the large one
shrinks to its share as soon as the small one is counted.

To refill in strides rather than one certificate at a time, ``room_for`` answers 0
until at least a quarter of the share (``stride``) is free; the provider then
commits its checkpoint and pauses with a continuation delayed by
:meth:`Backpressure.pause_seconds`: the time the importer needs, at the full rate,
to free what is still missing of a stride (1 s to 900 s, SQS's maximum delay, and
never more than the provider's timeout). The pause is noted on the summary
(``AuditTable.note_paused`` moves ``updated_at``), so the watchdog, which resumes
manifests idle for two provider timeouts, never takes a paused manifest for a
stalled one and never starts a second continuation chain for it.

No message outlives the import queue's retention
------------------------------------------------
The import queue keeps a message 14 days (``stacks.defaults.IMPORT_QUEUE_RETENTION_SECONDS``).
Every certificate message is sent by a provider under ``room_for``, which admits it
only if, counting it, the outstanding certificates of **all** unfinished manifests
stay within one window. So however large or numerous the manifests, the queue never
holds more than one window plus what concurrent admissions add (at most about 1.7
windows more, below), and a message sent now has at most about 2.7 windows of work
ahead of it. The importer drains the queue at its budget, ``min(iot_tps)``
certificates per second, so every message is received within about 2.7 x
``window_minutes`` (at most 1,440: one day, the stack refuses more) of being sent,
and a message that fails is received again after the visibility timeout, at most
``maxReceiveCount`` (5) times; then it goes to the dead-letter queue, which also
keeps 14 days. Three days plus five visibility timeouts (6 x the importer timeout, at
most 5 x 90 minutes) is far below 14 days. The number of manifests does not enter:
a manifest that is paused holds no import message at all, only its continuation in
its own manifest queue (one message per manifest, re-sent at every pause, so it
never ages either).

What the bound assumes, stated plainly:

* **Concurrent admissions.** An invocation reads the others once, at its start, and
  then admits up to its room while it runs; what another invocation admitted and has
  not yet checkpointed is invisible to it. Order the ``k`` provider invocations that
  admit at once by the time they read. Every manifest notes its start (strongly
  consistent) before its first read, so the i-th reader counts at least the ``i``
  manifests of the readers up to it as parsing: its room is at most ``share(i)``
  (``W/i``, at least ``MIN_SHARE``), and the first reader's room is what the window
  had free. The queue therefore holds at most

      worst_backlog(window, k) = W + share(2) + ... + share(k)     # ~ W * (1 + 1/2 + ... + 1/k)

  (:func:`worst_backlog`), and the bound is reached when each reader starts after the
  one before it read and before it checkpointed (tests/unit/provider/
  test_backpressure_index_lag.py). ``k`` is at most the providers' concurrency: one
  invocation per manifest (its lease), 2 per vendor (``PROVIDER_MAX_CONCURRENCY``),
  4 vendors: 8, so at most about 2.7 windows (1,630 certificates for the default
  600), under 3 days at the largest window (1,440 minutes).
* **Index lag.** The ``by_state`` index is eventually consistent: "Queries on global
  secondary indexes support eventual consistency only", and a write reaches the index
  "within a fraction of a second, under normal conditions" (DynamoDB developer guide,
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reading).
  Counting from the index alone, a manifest started less than the lag ``L`` before
  another's read is invisible to it: ``k`` manifests starting within ``L`` of each
  other each see themselves alone (parsing 1, share ``W``), and the queue could hold
  ``k * W``: 8 windows, and a small manifest behind them would wait 8 windows instead
  of about one. That is why the starts of the last ``STARTS_HORIZON_SECONDS`` (900 s)
  are read besides the index, strongly consistently: then ``L`` does not enter the
  bound above, as long as a write reaches the index within 15 minutes (AWS: "in some
  unlikely failure scenarios, longer propagation delays might occur"; beyond 900 s
  only the manifests started in that gap fall back to the ``k * W`` case). The cost is
  one ``PutItem`` per manifest start and one ``Query`` per invocation. The local cloud
  lags its indexes as AWS does (``thingpress_cli/local/emulator/index_lag.py``).
* The drain rate is the configured budget. If IoT answers slower (another tenant
  uses the quota), a window's work takes longer by that factor: at a tenth of the
  budget the default window still drains in ten minutes.
* ``outstanding`` of a manifest whose messages were lost stays above 0 and holds
  window room until the watchdog marks it ``STALLED`` (stalled manifests are not
  counted): the window shrinks for a while, it never overflows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: the default of ``THINGPRESS_IMPORT_WINDOW_MINUTES``.
DEFAULT_WINDOW_MINUTES = 1.0
#: the largest window the stack accepts: a day of work, well within the queue's 14-day retention.
MAX_WINDOW_MINUTES = 1440.0
#: the smallest share of the window a manifest gets, however many are in flight (one import batch),
#: so every manifest makes progress whenever the queue has room.
MIN_SHARE = 10
#: a paused manifest waits until a quarter of its share is free (fewer, larger refills).
STRIDE_FRACTION = 4
#: SQS DelaySeconds range.
MIN_PAUSE_SECONDS, MAX_PAUSE_SECONDS = 1, 900
#: manifest states that still enqueue (and so share the window).
PARSING_STATES = ("RECEIVED", "PARSING")


def certificate_rate(iot_tps: Mapping[str, float]) -> float:
    """Certificates per second the importer can finish: its slowest IoT API's budget."""
    return min(iot_tps.values())


@dataclass(frozen=True, slots=True)
class Window:
    """The import queue's window: at most ``size`` certificates queued but not finished."""

    #: certificates.
    size: int
    #: the importer's certificates per second (what drains the window).
    rate: float

    def share(self, parsing: int) -> int:
        """One manifest's share when ``parsing`` manifests (at least 1) are still being parsed."""
        return max(min(MIN_SHARE, self.size), self.size // max(1, parsing))

    @staticmethod
    def stride(share: int) -> int:
        """The least room worth a refill."""
        return max(1, share // STRIDE_FRACTION)


def window_for(window_minutes: float, iot_tps: Mapping[str, float]) -> Window | None:
    """The window for ``window_minutes`` of the importer's budget; None (no limit) for 0 minutes."""
    if window_minutes <= 0:
        return None
    rate = certificate_rate(iot_tps)
    return Window(size=max(1, math.floor(window_minutes * 60 * rate)), rate=rate)


@dataclass(frozen=True, slots=True)
class InFlight:
    """The other manifests, as one read of the manifests in flight found them (``AuditTable.manifests_in_flight``)."""

    #: manifests still being parsed, this one included (at least 1).
    parsing: int
    #: certificates queued and not finished by every other unfinished manifest.
    others_outstanding: int

    @classmethod
    def from_rows(cls, mid: str, rows: list[dict[str, Any]]) -> InFlight:
        """From the unfinished summaries (``AuditTable.manifests_in_flight``); ``mid`` is this manifest."""
        parsing = {mid}
        others = 0
        for row in rows:
            other = row.get("manifest_id")
            if other == mid:
                continue
            others += max(0, int(row.get("outstanding") or 0))
            if row.get("state") in PARSING_STATES and not row.get("parse_done"):
                parsing.add(other)
        return cls(parsing=len(parsing), others_outstanding=others)


def free(summary: Mapping[str, Any], window: Window, in_flight: InFlight) -> tuple[int, int]:
    """(free room, stride) for the manifest of ``summary``: room may be negative (over its share)."""
    own = max(0, int(summary.get("outstanding") or 0))
    share = window.share(in_flight.parsing)
    room = min(share - own, window.size - own - in_flight.others_outstanding)
    return room, Window.stride(share)


def room_for(summary: Mapping[str, Any], *, window: Window | None, in_flight: InFlight) -> int | None:
    """How many more certificates this manifest may enqueue now; None: no limit.

    0 while less than a stride is free (the provider pauses); see the module docstring.
    """
    if window is None:
        return None
    room, stride = free(summary, window, in_flight)
    return room if room >= stride else 0


def pause_seconds(summary: Mapping[str, Any], *, window: Window, in_flight: InFlight,
                  longest: int = MAX_PAUSE_SECONDS) -> int:
    """The delay of a paused manifest's continuation: time for the importer to free the rest of a stride.

    Clamped to 1 .. min(``longest``, 900) seconds (``longest``: the provider passes its own
    timeout, so a pause is always shorter than the watchdog's stall threshold).
    """
    room, stride = free(summary, window, in_flight)
    seconds = math.ceil((stride - room) / window.rate)
    return max(MIN_PAUSE_SECONDS, min(MAX_PAUSE_SECONDS, longest, seconds))


def worst_backlog(window: Window, concurrent: int) -> int:
    """The most the import queue can hold when ``concurrent`` provider invocations admit at once
    (module docstring, "What the bound assumes"): the first reader's window plus, for the i-th reader,
    the share of i manifests parsing."""
    return window.size + sum(window.share(i) for i in range(2, concurrent + 1))


class Backpressure:
    """``room_for`` and ``pause_seconds`` for one manifest in one invocation.

    The other manifests are read once, on first use (``unfinished``: typically
    ``AuditTable.manifests_in_flight``), and cached: never a query per entry.
    """

    def __init__(self, mid: str, window: Window | None, unfinished: Callable[[], list[dict[str, Any]]]):
        self.mid = mid
        self.window = window
        self._unfinished = unfinished
        self._in_flight: InFlight | None = None

    @property
    def in_flight(self) -> InFlight:
        if self._in_flight is None:
            self._in_flight = InFlight.from_rows(self.mid, self._unfinished())
        return self._in_flight

    def room_for(self, summary: Mapping[str, Any]) -> int | None:
        """How many more certificates this manifest may enqueue now; None: no limit."""
        if self.window is None:
            return None
        return room_for(summary, window=self.window, in_flight=self.in_flight)

    def pause_seconds(self, summary: Mapping[str, Any], longest: int = MAX_PAUSE_SECONDS) -> int:
        if self.window is None:
            raise ValueError("no window: nothing ever pauses")
        return pause_seconds(summary, window=self.window, in_flight=self.in_flight, longest=longest)
