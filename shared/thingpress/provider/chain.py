"""One live chain per manifest, as the provider runs it (``thingpress.provider``, "One live chain"):
take the manifest's lease on the live handle (``_take``), answer a stale or busy handle, stop when
another handle is ahead (``_behind``), and hand over to the next link (``_continue``, ``_send``).

``ChainHandling`` is mixed into ``Provider``: it uses the provider's ``audit``, ``sqs``,
``settings``, ``vendor`` and ``wall_clock``, and its ``_run`` and ``_finished``.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from thingpress.audit.chain import Handle
from thingpress.provider.deadline import Deadline
from thingpress.provider.failures import ProviderError
from thingpress.provider.queue_messages import Continuation, ObjectRef
from thingpress.provider.results import RunResult
from thingpress.provider.telemetry import logger

#: SQS's longest DelaySeconds, and Lambda's longest invocation (the lease without a context).
MAX_DELAY_SECONDS = 900
MAX_INVOCATION_MS = 900_000


class ChainHandling:
    """The provider's side of "One live chain" (module docstring); mixed into ``Provider``."""

    def _take(self, mid: str, ref: ObjectRef, summary: dict[str, Any], handle: Handle,
              deadline: Deadline) -> RunResult:
        """Run the manifest if ``handle`` is its live handle and its lease is free (``thingpress.provider``)."""
        if Handle.of(summary) != handle:
            return self._stale(mid, handle, summary)
        now = self.wall_clock()
        until = now + (deadline.at_start_ms if deadline.at_start_ms is not None else MAX_INVOCATION_MS) / 1000
        if not self.audit.claim(mid, handle, until=until, now=now):
            summary = self.audit.get_summary(mid) or summary
            if self._finished(mid, summary):
                return RunResult(mid, "skipped")
            if Handle.of(summary) != handle:
                return self._stale(mid, handle, summary)
            return self._busy(mid, ref, handle, summary)
        logger.info("manifest taken", extra={"object": ref.uri, "chain": handle.chain, "link": handle.link,
                                             "resume_after": int(summary.get("checkpoint") or 0)})
        outcome = "failed"
        try:
            result = self._run(mid, ref, summary, deadline)
            outcome = result.outcome
            return result
        except Exception:
            # Failing: give the lease back, so this message carries on when it comes back (a kill cannot;
            # then the lease ends at the deadline, before the visibility timeout brings the message back).
            self.audit.release(mid, handle, until=until)
            raise
        finally:
            logger.info("manifest let go", extra={"outcome": outcome})

    @staticmethod
    def _stale(mid: str, handle: Handle, summary: dict[str, Any]) -> RunResult:
        """A handle the manifest has left (``thingpress.provider``, "One live chain"): acknowledged."""
        live = Handle.of(summary)
        logger.info("message is not the manifest's live handle; acknowledged, nothing done",
                    extra={"message_chain": handle.chain, "message_link": handle.link, "live_chain": live.chain,
                           "live_link": live.link})
        return RunResult(mid, "stale", reason=f"chain {handle.chain} link {handle.link} is stale: the manifest is "
                                              f"on chain {live.chain} link {live.link}")

    def _busy(self, mid: str, ref: ObjectRef, handle: Handle, summary: dict[str, Any]) -> RunResult:
        """Another invocation holds the lease on this very handle (a second delivery of its message).

        Whether it is alive cannot be known: the same handle is sent again, delayed until the
        lease ends, and this message acknowledged (``thingpress.provider``, "One live chain").
        """
        delay = max(1, min(MAX_DELAY_SECONDS, math.ceil(float(summary.get("lease_until") or 0) - self.wall_clock()) + 1))
        self._send(Continuation(mid, self.vendor, ref, handle), delay)
        logger.info("another invocation holds this manifest; the same handle sent again after its lease",
                    extra={"chain": handle.chain, "link": handle.link, "delay_seconds": delay})
        return RunResult(mid, "busy")

    def _behind(self, result: RunResult) -> RunResult:
        """Another invocation committed first (on this chain, or a newer one): acknowledge and stop.

        No message is sent: the invocation ahead carries the manifest on, and if it dies its
        own message comes back, or the watchdog starts a new chain (``thingpress.provider``).
        """
        result.outcome = "behind"
        summary = self.audit.get_summary(result.manifest_id)
        if summary is not None:
            self._finished(result.manifest_id, summary)  # the completion check, if it is parsed
        logger.info("another handle took this manifest over; stopping",
                    extra={"checkpoint": summary and summary.get("checkpoint")})
        return result

    def _continue(self, mid: str, ref: ObjectRef, handle: Handle, *, delay: int = 0) -> bool:
        """Hand the manifest over from ``handle`` to a new link of its chain and send that continuation.

        False (nothing sent) if the summary is no longer on ``handle``: another took over.
        """
        nxt = Handle(handle.chain, uuid.uuid4().hex)
        if not self.audit.hand_over(mid, handle, nxt.link):  # type: ignore[arg-type]
            return False
        self._send(Continuation(mid, self.vendor, ref, nxt), delay)
        return True

    def _send(self, continuation: Continuation, delay: int = 0) -> None:
        url = self.settings.manifest_queue_url
        if not url:
            # Without our own queue the only way on is SQS redelivery: fail the message.
            raise ProviderError("THINGPRESS_MANIFEST_QUEUE_URL is not set: cannot hand the manifest "
                                "over to a continuation; it resumes from its checkpoint on redelivery")
        body = continuation.encode()
        if delay:
            self.sqs.send_message(QueueUrl=url, MessageBody=body, DelaySeconds=delay)
        else:
            self.sqs.send_message(QueueUrl=url, MessageBody=body)
