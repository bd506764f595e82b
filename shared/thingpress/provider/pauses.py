"""Backpressure pauses: the window and fair share of a manifest (``backpressure``), and pausing it
when the import window is full (``_pause``: the pause noted, a delayed continuation sent).

``Pausing`` is mixed into ``Provider``: it uses the provider's ``audit``, ``settings`` and
``tuning``, and its ``_continue`` and ``_behind`` (``thingpress.provider.chain``).
"""

from __future__ import annotations

from typing import Any

from thingpress.audit.chain import Handle
from thingpress.backpressure import MAX_PAUSE_SECONDS, Backpressure, window_for
from thingpress.provider.deadline import Deadline
from thingpress.provider.queue_messages import ObjectRef
from thingpress.provider.results import RunResult
from thingpress.provider.telemetry import logger


class Pausing:
    """The provider's backpressure pauses (module docstring); mixed into ``Provider``."""

    def backpressure(self, mid: str) -> Backpressure:
        """The window and fair share for one manifest in this invocation (other manifests read once)."""
        window = window_for(self.settings.import_window_minutes, self.settings.iot_tps)
        return Backpressure(mid, window, self.audit.manifests_in_flight)

    def _pause(self, result: RunResult, ref: ObjectRef, summary: dict[str, Any], pressure: Backpressure | None,
               deadline: Deadline, *, checkpoint: int) -> RunResult:
        """The import window is full (progress committed up to ``checkpoint``): pause the manifest.

        The pause is noted on the summary (``AuditTable.note_paused``: the watchdog sees
        the manifest alive) and a continuation is sent, delayed by
        ``Backpressure.pause_seconds`` (counting what this run queued; ``Tuning.pause_seconds``
        with an explicit ``window``), at most the invocation's time at start (its timeout),
        so a paused manifest is resumed well before the watchdog's stall threshold (two
        timeouts). If the note finds the checkpoint or the chain moved on, another invocation is
        ahead: ``_behind``.
        """
        if pressure is None:
            delay = self.tuning.pause_seconds
        else:
            own = {**summary, "outstanding": int(summary.get("outstanding") or 0) + result.queued}
            longest = MAX_PAUSE_SECONDS if deadline.at_start_ms is None else max(1, deadline.at_start_ms // 1000)
            delay = pressure.pause_seconds(own, longest)
        handle = Handle.of(summary)
        if (not self.audit.note_paused(result.manifest_id, checkpoint=checkpoint, seconds=delay, handle=handle)
                or not self._continue(result.manifest_id, ref, handle, delay=delay)):
            return self._behind(result)
        logger.info("import window full; manifest paused, delayed continuation sent",
                    extra={"queued_this_invocation": result.queued, "pause_seconds": delay, "checkpoint": checkpoint})
        result.outcome = "paused"
        return result
