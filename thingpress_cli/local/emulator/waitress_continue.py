"""waitress completes an ``Expect: 100-continue`` request that has no body.

A client that sends ``Expect: 100-continue`` waits a moment for the 100 (Continue) before it sends
the content; a request whose ``Content-Length`` is 0 has no content, so it is complete once its
header is read (RFC 9110, "Expect", https://www.rfc-editor.org/rfc/rfc9110#section-10.1.1).
waitress 3.0.2 sends the 100 (Continue) and then marks such a request incomplete again
(``HTTPChannel.send_continue`` sets ``request.completed = False``), waiting for a body that never
comes: the client waits for its answer until waitress's ``channel_timeout`` (300 s) closes the
connection. botocore sends ``Expect: 100-continue`` with every S3 ``PutObject``/``UploadPart``
that carries a body, an empty one included, so an empty object upload hung for five minutes here
(the results writer's empty ``errors.jsonl``); AWS answers it at once. Installed by the server
(:mod:`.server`), checked like the moto patches (:data:`PATCHED`).
"""

from __future__ import annotations

import functools
from typing import Any

from thingpress_cli.local.emulator.guard import Patched, require

PATCHED = (Patched("waitress.channel", "HTTPChannel.send_continue", ("self",)),)


def install() -> None:
    """Patch waitress (once): a request without a body stays complete after its 100 (Continue)."""
    from waitress.channel import HTTPChannel

    require(PATCHED, __name__)
    original = HTTPChannel.send_continue
    if getattr(original, "keeps_bodiless_requests_complete", False):
        return

    @functools.wraps(original)
    def send_continue(self: Any) -> None:
        request = self.request
        bodiless = bool(request.completed) and not request.chunked and not request.content_length
        original(self)
        if bodiless:
            request.completed = True

    send_continue.keeps_bodiless_requests_complete = True  # type: ignore[attr-defined]
    HTTPChannel.send_continue = send_continue  # type: ignore[method-assign]
