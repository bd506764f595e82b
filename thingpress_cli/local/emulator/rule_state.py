"""The state every settable emulator rule keeps: a lock, and a clock tests can replace.

:class:`.conflicts.TransactionHolds`, :class:`.index_lag.IndexLag` and
:class:`.iot_detach.DetachPropagation` each hold settings and what happened within a time
window (holds, items before a write, detaches propagating), changed from the server's threads
and reset between tests with a manual clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RuleState:
    """A lock and a clock; :meth:`reset` puts the rule back to its defaults (``_clear``, under the lock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self.reset(clock)

    def reset(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Back to the defaults (off), nothing kept; ``clock`` gives seconds (monotonic)."""
        with self._lock:
            self.clock = clock
            self._clear()

    def _clear(self) -> None:
        """The rule's own defaults and empty state (called with the lock held)."""
        raise NotImplementedError
