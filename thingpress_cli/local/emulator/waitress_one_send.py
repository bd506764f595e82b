"""waitress sends an answer's head and its first body chunk in one send.

waitress 3.0.2 (``Task.write``) hands the head to the connection as soon as it is built and the body
after it, and with ``send_bytes`` 1 (its default) each is sent at once: the head leaves alone and the
body follows a moment later (0.2 to 35 ms apart in packet captures of ``thingpress local up``, on a
busy host). In those captures Terraform's AWS provider closed the connection between the two three
times in seven deploy cycles and its SDK sent the call again, though the emulator had applied it
(:mod:`thingpress_cli.local.lost_creates`: a ``CreateFunction`` or ``CreateEventSourceMapping`` sent
again is refused as existing). With head and body in one send, seven more cycles showed no loss. Why
the client closes is not known; AWS sends a small answer in one piece too.

The patch collects what the first ``write`` of an answer hands the connection (the head, then the
first chunk as waitress framed it) and hands it over as one piece, still from the task's thread, so
nothing waits for waitress's main loop. Later writes are waitress's own. Installed by the server
(:mod:`.server`), checked like the moto patches (:data:`PATCHED`).
"""

from __future__ import annotations

import functools
from typing import Any

from thingpress_cli.local.emulator.guard import Patched, require

PATCHED = (Patched("waitress.task", "Task.write", ("self", "data")),
           Patched("waitress.channel", "HTTPChannel.write_soon", ("self", "data")))


def install() -> None:
    """Patch waitress (once): an answer's head goes out with its first body chunk."""
    from waitress.task import Task

    require(PATCHED, __name__)
    original = Task.write
    if getattr(original, "sends_head_with_body", False):
        return

    @functools.wraps(original)
    def write(self: Any, data: bytes) -> None:
        if self.wrote_header:
            original(self, data)
            return
        channel = self.channel
        pieces: list[bytes] = []
        channel.write_soon = pieces.append  # this connection's one task: nothing else writes meanwhile
        try:
            original(self, data)
        finally:
            del channel.write_soon
        channel.write_soon(b"".join(pieces))

    write.sends_head_with_body = True  # type: ignore[attr-defined]
    Task.write = write  # type: ignore[method-assign]
