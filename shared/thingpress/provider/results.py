"""What one provider invocation did with one manifest (``RunResult``); the core's own account of a
chunk is ``thingpress.provider.core.ChunkResult``, which the runtime turns into this."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RunResult:
    """What one invocation did with one manifest (returned for tests, tools and logs)."""

    manifest_id: str
    #: skipped (already done), refused, complete (parse finished), chunked (continuation sent),
    #: behind (another handle took over while this one ran: message acknowledged), deferred
    #: (continuation sent before starting), stale (the message is not the manifest's live
    #: handle: acknowledged), busy (another invocation holds the lease: the same handle sent
    #: again, delayed until the lease ends), paused (the import window is full: checkpoint
    #: committed, delayed continuation sent).
    outcome: str
    entries: int = 0
    queued: int = 0
    duplicates: int = 0
    rejected: int = 0
    reason: str | None = None
