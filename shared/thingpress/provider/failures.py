"""How a manifest fails: for now (``ProviderError``: the message is retried) or for good (a refusal,
with its reason: ``refusal_reason``; an object that cannot be read any more is ``Gone``)."""

from __future__ import annotations

import errno

from thingpress.errors import ThingpressError
from thingpress.records import ManifestError


class ProviderError(ThingpressError, RuntimeError):
    """A transient failure: the message is retried and the manifest resumes from its checkpoint."""


class Gone(ThingpressError):
    """The object named by the event cannot be read any more."""


def refusal_reason(exc: Exception) -> str:
    """Why a file is refused for good: the object is gone, not a manifest, or /tmp is full."""
    if isinstance(exc, ManifestError):
        return exc.reason
    if isinstance(exc, OSError) and not isinstance(exc, Gone):
        if exc.errno != errno.ENOSPC:
            raise exc
        # A retry meets the same disk: refused, with what to change.
        return ("no space left in the function's /tmp (its ephemeral storage) while spooling the manifest: "
                "give the function more ephemeral storage or lower the archive limits")
    return str(exc)
