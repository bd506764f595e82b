"""The invocation's deadline: when a provider invocation must hand over (``Deadline``)."""

from __future__ import annotations

from typing import Any


class Deadline:
    """Knows when an invocation must hand over: remaining time below a safety margin."""

    def __init__(self, context: Any, margin_ms: int | None):
        self._context = context if context is not None and hasattr(context, "get_remaining_time_in_millis") else None
        #: the invocation's time left when it started (None without a context).
        self.at_start_ms: int | None = None
        if self._context is None:
            self.margin = 0
            return
        self.at_start_ms = self._context.get_remaining_time_in_millis()
        self.margin = margin_ms if margin_ms is not None else min(30_000, self.at_start_ms // 6)

    def remaining(self) -> int | None:
        return self._context.get_remaining_time_in_millis() if self._context else None

    def low(self) -> bool:
        return self._context is not None and self._context.get_remaining_time_in_millis() < self.margin
