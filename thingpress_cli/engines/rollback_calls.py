"""A rollback's IoT calls: each through the throttle, retried while a detach propagates; what stops a run.

One job: how the rollback engine (:mod:`.rollback`) talks to IoT and what happens when
IoT says no. Every call goes through ``thingpress.throttle`` (the importer's token
buckets and backoff) at :data:`ROLLBACK_TPS`; a change is made only when applying.

``DetachThingPrincipal`` "is asynchronous. It might take several seconds for the
detachment to propagate" (https://docs.aws.amazon.com/iot/latest/apireference/API_DetachThingPrincipal.html):
right after it, AWS refuses ``DeleteCertificate`` (``DeleteConflictException``) and
``DeleteThing`` (``InvalidRequestException``) as if the principal were still
attached. A rollback deletes only once it read nothing attached, so these
refusals (:data:`PROPAGATING`) pass: the deletes come in a second pass, after
every detach of the run (:meth:`.rollback.Rollback.manifests`), so one propagation is
waited out per run rather than one per certificate, and the throttle retries them as it
retries throttling, with :data:`ROLLBACK_BACKOFF` (more, longer attempts than the
importer's: they outlast several seconds). Any other AWS error, or one still
refused when the attempts are used up, stops the run with :class:`Stopped`: the
commands print what stopped it, what was done and the command that resumes (every
step checks the state first), and exit 4 (an AWS error: ``core.errors``).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from thingpress.errors import ThingpressError
from thingpress.settings import DEFAULT_IOT_TPS
from thingpress.throttle import Backoff, Throttle, error_code, is_transient
from thingpress_cli.engines.rollback_report import Report

if TYPE_CHECKING:
    from thingpress_cli.engines.rollback import Rollback


#: requests/second for the IoT APIs a rollback calls that the importer does not (the
#: throttle's buckets; a conservative 10/s, AWS's lowest default among them).
ROLLBACK_TPS: dict[str, float] = {
    **DEFAULT_IOT_TPS,
    "DescribeThing": 10, "DescribeCertificate": 10, "ListPrincipalThings": 10, "ListThingPrincipals": 10,
    "ListAttachedPolicies": 10, "DetachThingPrincipal": 10, "DetachPolicy": 10, "UpdateCertificate": 10,
    "DeleteCertificate": 10, "DeleteThing": 10, "ListTargetsForPolicy": 10, "ListThings": 10,
    "UpdateThing": 10, "ListThingsInThingGroup": 10, "RemoveThingFromThingGroup": 10,
}
#: AWS's refusals while a detach propagates, per API: retried (the rollback deletes only what it read
#: detached). The page: https://docs.aws.amazon.com/iot/latest/apireference/API_DetachThingPrincipal.html
PROPAGATING: dict[str, frozenset[str]] = {
    "DeleteCertificate": frozenset({"DeleteConflictException"}),
    "DeleteThing": frozenset({"InvalidRequestException"}),
}
#: the rollback's backoff: 15 retries, each a uniform wait up to 1, 2, 4, then 5 s (about 33 s in all on
#: average): with full jitter, the odds that they all end within 10 s are below 1e-5, so "several
#: seconds" of propagation (or a throttling burst) is outlasted; the importer's 8 attempts are not.
ROLLBACK_BACKOFF = Backoff(base=0.5, cap=5.0, max_attempts=16)
#: what stops a rollback part-way: an AWS answer or a botocore failure (after the throttle's retries, if any).
AWS_ERRORS = (ClientError, BotoCoreError, ThingpressError)


def new_throttle(**kwargs: Any) -> Throttle:
    """The rollback's throttle: :data:`ROLLBACK_TPS`, :data:`ROLLBACK_BACKOFF` (``kwargs``: clock, sleep, rng)."""
    return Throttle(ROLLBACK_TPS, backoff=ROLLBACK_BACKOFF, **kwargs)


class ThrottledCalls:
    """The IoT calls of a :class:`~.rollback.Rollback` (its base): reads and changes through its throttle."""

    iot: Any
    throttle: Throttle
    apply: bool
    report: Report

    def _read(self, api: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return self.throttle.call(api, fn, retry_codes=PROPAGATING.get(api, ()), **kwargs)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise

    def _change(self, what: str, api: str, fn: Any, actions: list[str], label: str, **kwargs: Any) -> None:
        """Call only when applying, then count ``what`` (a call that raised is not done). A resource gone
        meanwhile counts as done (resumable)."""
        if self.apply:
            self._read(api, fn, **kwargs)
        self.report.counts[what] += 1
        actions.append(label)


class Stopped(ThingpressError):
    """An AWS error stopped a rollback (or teardown) part-way; :meth:`message` says what the operator needs."""

    def __init__(self, error: BaseException, undo: Rollback | None):
        self.error, self.undo = error, undo
        super().__init__(self.cause())

    def cause(self) -> str:
        """Where the run was and the error, in one line."""
        where = f" at {self.undo.at}" if self.undo is not None and self.undo.at else ""
        error = self.error
        if not isinstance(error, ClientError):
            return f"stopped{where}: {type(error).__name__}: {error}"
        details = error.response.get("Error", {})
        code, api = details.get("Code"), error.operation_name
        retried = ""
        if self.undo is not None and api in ROLLBACK_TPS and (is_transient(error) or code in PROPAGATING.get(api, ())):
            retried = f" (still refused after {self.undo.throttle.backoff.max_attempts} attempts)"
        return f"stopped{where}: {api} refused: {code}: {details.get('Message', '')}{retried}"

    def done(self) -> str:
        """What the run did before it stopped."""
        undo = self.undo
        if undo is None:
            return "nothing was changed"
        counts = ", ".join(f"{name} {count}" for name, count in sorted(undo.report.counts.items())) or "nothing"
        finished = f"manifests finished: {len(undo.finished)} of {len(undo.scope)}"
        if not undo.apply:
            return f"dry run, nothing was changed; counted before the stop: {counts}; {finished}"
        return f"done before the stop: {counts}; {finished}"

    def message(self, resume: Sequence[str]) -> str:
        """What the operator reads (after ``thingpress <command>: ``): the cause, what was done, the command
        that resumes."""
        return (f"{self.cause()}\n{self.done()}\n"
                "every step reads the state before it changes it, so the same command resumes where this one "
                f"stopped:\n  {shlex.join(resume)}")
