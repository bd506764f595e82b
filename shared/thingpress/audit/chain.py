"""One live chain per manifest, on the summary (``thingpress.provider``, "One live chain"): which
message may run next (``Handle``: chain and link), the invocation's lease (``claim``, ``release``),
the hand-over to the next link (``hand_over``) and the watchdog's new chain (``bump_chain``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from thingpress.audit.keys import now_iso
from thingpress.audit.writes import TableWrites


def _epoch_number(seconds: float) -> Decimal:
    """Epoch seconds as a DynamoDB number, to the millisecond (the serializer takes no float)."""
    return Decimal(str(round(seconds, 3)))


@dataclass(frozen=True, slots=True)
class Handle:
    """Which message an invocation runs on: its chain and link (``thingpress.provider``, "One live chain").

    ``link`` is None for a manifest's S3 event (no link handed over yet).
    """

    chain: int = 0
    link: str | None = None

    def condition(self) -> tuple[str, dict[str, Any]]:
        """The condition "the summary is still on this handle", and its values."""
        chain = "(attribute_not_exists(chain) OR chain = :chain)" if self.chain == 0 else "chain = :chain"
        link = "attribute_not_exists(link)" if self.link is None else "link = :link"
        values: dict[str, Any] = {":chain": self.chain}
        if self.link is not None:
            values[":link"] = self.link
        return f"{chain} AND {link}", values

    @classmethod
    def of(cls, summary: dict[str, Any]) -> Handle:
        """The handle a summary is on now."""
        return cls(int(summary.get("chain") or 0), summary.get("link"))


class Chains(TableWrites):
    """The lease and the chain on a manifest's summary: a part of ``AuditTable``."""

    def claim(self, mid: str, handle: Handle, *, until: float, now: float) -> bool:
        """Take the manifest's lease for an invocation on ``handle`` until ``until`` (epoch seconds).

        Conditional on the summary still being on ``handle``, parsing not finished, and no
        other invocation's lease running at ``now``: so at most one invocation works on a
        manifest at a time (``thingpress.provider``, "One live chain"). False otherwise.
        """
        owned, values = handle.condition()
        return self._update_summary(
            mid, "SET lease_until = :until",
            f"attribute_exists(pk) AND parse_done = :false AND {owned} AND "
            "(attribute_not_exists(lease_until) OR lease_until < :now)",
            {**values, ":until": _epoch_number(until), ":now": _epoch_number(now), ":false": False})

    def release(self, mid: str, handle: Handle, *, until: float) -> None:
        """End the lease :meth:`claim` took until ``until`` (an invocation that fails early gives the
        manifest back at once: its message comes back and carries on). A no-op if it is not that lease."""
        owned, values = handle.condition()
        self._update_summary(mid, "REMOVE lease_until", f"{owned} AND lease_until = :until",
                             {**values, ":until": _epoch_number(until)})

    def hand_over(self, mid: str, handle: Handle, link: str) -> bool:
        """Pass the manifest from ``handle`` to the next message of its chain, ``link``; the lease ends.

        Written before that message is sent. False (nothing written) if the summary is no
        longer on ``handle``: another invocation took over.
        """
        owned, values = handle.condition()
        return self._update_summary(mid, "SET link = :next REMOVE lease_until", f"attribute_exists(pk) AND {owned}",
                                    {**values, ":next": link})

    def bump_chain(self, mid: str, *, seen: dict[str, Any], link: str, now: datetime | None = None) -> Handle | None:
        """Take an idle manifest over with a new chain of invocations (the watchdog's resume).

        Conditional on the summary still being as the caller judged it (``seen``: its chain,
        link and checkpoint; parsing not finished). Returns the new chain's handle (its first
        link ``link``), or None if the manifest moved meanwhile. Every handle of an older
        chain is stale from then on, and a lease it held ends (``thingpress.provider``).
        """
        old = Handle.of(seen)
        owned, values = old.condition()
        if not self._update_summary(
                mid, "SET chain = :next, link = :new_link, resumed_at = :now REMOVE lease_until",
                f"attribute_exists(pk) AND checkpoint = :c AND parse_done = :false AND {owned}",
                {**values, ":next": old.chain + 1, ":new_link": link, ":now": now_iso(now),
                 ":c": int(seen.get("checkpoint") or 0), ":false": False}):
            return None
        return Handle(old.chain + 1, link)
