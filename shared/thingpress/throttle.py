"""Client-side rate limiting for the IoT control plane: token buckets, backoff, deadline.

AWS IoT quotas are per account and per API (``RegisterCertificateWithoutCA``: 10
requests/second by default, ``AttachPolicy``: 15, the rest 100). Every importer
instance runs its own buckets, so each bucket gets ``budget / max concurrency``:
with the function's reserved concurrency capped at ``IMPORT_CONCURRENCY``, the sum
over all instances never exceeds the account budget. The budget is the deployment
setting ``THINGPRESS_IOT_TPS`` (defaults: ``settings.DEFAULT_IOT_TPS``).

If AWS still throttles (other tenants of the account, a quota lower than
configured, or this budget's own instances meeting in the same instant: at a budget
equal to the quota the account's bucket is near empty all the time), ``Throttle.call``
retries with exponential backoff and full jitter (sleep a uniform random time in
``[0, min(cap, base * 2**attempt)]``), counting each throttled answer. A throttled
call gives its token back: the quota counts the requests it served, so the refused
one took nothing from it, and charging the instance's share for it would leave that
share unused (measured at importer concurrency 20 over the 10/s default quota: one
throttle cost an instance two seconds of its 0.5/s share on top of the backoff, and
batches that met a few ran into the invocation deadline and waited out the
visibility timeout). Server errors (5xx) and connection failures are retried the
same way. When the attempts are used up, the last error is raised: the caller
treats it as transient. A caller that knows an error code of one call to be
passing (AWS refuses ``DeleteCertificate`` for a few seconds after the certificate's
``DetachThingPrincipal``: ``thingpress_cli.engines.rollback_calls``) names it for that call
(``retry_codes``): it is retried the same way, counted as a retry, not a throttle.

Deadline: a Lambda invocation ends at a fixed instant. A call whose token or
backoff wait would end after ``deadline - margin`` is not attempted;
``DeadlineExceeded`` is raised instead, so the caller returns the message as a
batch item failure (SQS delivers it again) rather than being killed mid-batch.

Clock and sleep are injectable (``time.monotonic``/``time.sleep`` by default) so
tests run without waiting; ``random`` too, for deterministic jitter.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError, ReadTimeoutError

from thingpress.errors import ThingpressError
from thingpress.settings import DEFAULT_IOT_TPS

T = TypeVar("T")

#: error codes AWS uses for "slow down"; each counts as one throttle.
THROTTLING_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "TooManyRequests",
    "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "SlowDown",
})
#: server-side codes worth a retry even when the HTTP status is not 5xx.
TRANSIENT_CODES = frozenset({
    "ServiceUnavailableException", "ServiceUnavailable", "InternalFailureException",
    "InternalFailure", "InternalException", "InternalServerError", "RequestTimeout",
    "RequestTimeoutException",
})


class DeadlineExceeded(ThingpressError):
    """The call cannot be made before the invocation's deadline; retry the message later."""

    def __init__(self, api: str, wait: float, remaining: float):
        super().__init__(f"{api}: would need to wait {wait:.2f}s with {remaining:.2f}s left before the deadline")
        self.api = api


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError``, else None."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


def is_throttling(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(exc) in THROTTLING_CODES or status == 429


def is_transient(exc: BaseException) -> bool:
    """Throttling, a 5xx answer or a network failure: worth trying again later.

    A failure while sending reaches the caller as botocore's ``HTTPClientError``
    (``ConnectionClosedError`` is one): botocore's ``URLLib3Session.send`` wraps
    whatever the HTTP layer raised (even a ``ValueError`` such as "I/O operation on
    closed file"), so a bare ``ValueError`` is never the network: it is a bug.
    """
    if isinstance(exc, (BotoConnectionError, ReadTimeoutError, HTTPClientError, ConnectionError, TimeoutError)):
        return True
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return is_throttling(exc) or error_code(exc) in TRANSIENT_CODES or status >= 500


class TokenBucket:
    """A thread-safe token bucket: ``rate`` tokens per second, at most ``capacity`` saved.

    ``reserve`` takes a token now or books the next free one and returns how long
    to wait for it; waiting happens outside the lock so threads do not serialize on
    sleeps. Tokens booked are never given back: a cancelled wait (deadline) simply
    leaves a short gap, which only errs on the slow side.
    """

    def __init__(self, rate: float, capacity: float | None = None, *, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError(f"token bucket rate must be positive, got {rate}")
        self.rate = float(rate)
        # A burst of at most one second's worth (and at least one token).
        self.capacity = float(capacity if capacity is not None else max(1.0, rate))
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self) -> float:
        """Seconds until a token is free, without taking it."""
        with self._lock:
            self._refill(self._clock())
            return max(0.0, (1.0 - self._tokens) / self.rate)

    def reserve(self, latest: float | None = None) -> float | None:
        """Take a token; return the wait before using it, or None if it would end after ``latest``."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            wait = max(0.0, (1.0 - self._tokens) / self.rate)
            if latest is not None and now + wait > latest:
                return None
            self._tokens -= 1.0
            return wait

    def refund(self) -> None:
        """Give back a token whose call AWS throttled: it used none of the account's quota."""
        with self._lock:
            self._tokens = min(self.capacity, self._tokens + 1.0)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter."""

    base: float = 0.1
    cap: float = 5.0
    #: attempts per call, the first one included.
    max_attempts: int = 8

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Sleep before retry number ``attempt`` (1 = first retry): uniform in [0, min(cap, base*2**attempt)]."""
        return rng() * min(self.cap, self.base * (2 ** attempt))


@dataclass(slots=True)
class ThrottleStats:
    """Counters for metrics; updated under the throttle's lock."""

    calls: int = 0
    throttled: int = 0
    retries: int = 0
    waited: float = 0.0
    by_api: dict[str, int] = field(default_factory=dict)


class Throttle:
    """One token bucket per IoT API plus retry with backoff; shared by every thread.

    ``deadline`` values are instants on this throttle's clock (``clock() + remaining``).
    """

    def __init__(self, tps: Mapping[str, float] | None = None, concurrency: int = 1, *,
                 backoff: Backoff | None = None, margin: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random, default_tps: float = 10.0):
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.concurrency = concurrency
        self.backoff = backoff or Backoff()
        self.margin = margin
        self.clock = clock
        self._sleep = sleep
        self._rng = rng
        self._default_rate = default_tps / concurrency
        self._buckets = {api: TokenBucket(rate / concurrency, clock=clock)
                         for api, rate in dict(tps or DEFAULT_IOT_TPS).items()}
        self._lock = threading.Lock()
        self.stats = ThrottleStats()

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> Throttle:
        """Buckets sized from ``FunctionSettings.iot_tps`` / ``import_concurrency``."""
        return cls(settings.iot_tps, settings.import_concurrency, **kwargs)

    def bucket(self, api: str) -> TokenBucket:
        with self._lock:
            found = self._buckets.get(api)
            if found is None:
                found = self._buckets[api] = TokenBucket(self._default_rate, clock=self.clock)
            return found

    def rate(self, api: str) -> float:
        return self.bucket(api).rate

    def deadline_after(self, seconds: float) -> float:
        """The deadline instant ``seconds`` from now on this throttle's clock."""
        return self.clock() + seconds

    def remaining(self, deadline: float | None) -> float:
        return float("inf") if deadline is None else deadline - self.clock()

    def _wait(self, api: str, seconds: float, deadline: float | None) -> None:
        if deadline is not None and self.clock() + seconds > deadline - self.margin:
            raise DeadlineExceeded(api, seconds, self.remaining(deadline))
        if seconds > 0:
            with self._lock:
                self.stats.waited += seconds
            self._sleep(seconds)

    def _take(self, api: str, deadline: float | None) -> None:
        latest = None if deadline is None else deadline - self.margin
        wait = self.bucket(api).reserve(latest)
        if wait is None:
            raise DeadlineExceeded(api, self.bucket(api).wait_time(), self.remaining(deadline))
        if wait > 0:
            with self._lock:
                self.stats.waited += wait
            self._sleep(wait)

    def call(self, api: str, fn: Callable[..., T], /, *args: Any, deadline: float | None = None,
             tally: ThrottleStats | None = None, retry_codes: Collection[str] = (), **kwargs: Any) -> T:
        """Call ``fn(*args, **kwargs)`` under ``api``'s bucket; retry transient errors.

        ``tally`` (optional) receives this call's counters as well as the
        throttle-wide ``stats`` (the importer keeps one per message, for metrics).
        ``retry_codes``: AWS error codes also retried for this call (the caller
        knows the refusal passes). Raises ``DeadlineExceeded`` if a token or a
        backoff would end past the deadline, the last error once attempts are
        exhausted, and any other error at once.
        """
        tallies = (self.stats,) if tally is None else (self.stats, tally)
        attempt = 0
        while True:
            self._take(api, deadline)
            with self._lock:
                for t in tallies:
                    t.calls += 1
                    t.by_api[api] = t.by_api.get(api, 0) + 1
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 -- classified below, re-raised if not transient
                if not (is_transient(exc) or error_code(exc) in retry_codes):
                    raise
                attempt += 1
                retry = attempt < self.backoff.max_attempts
                if is_throttling(exc):
                    self.bucket(api).refund()
                with self._lock:
                    for t in tallies:
                        t.throttled += is_throttling(exc)
                        t.retries += retry
                if not retry:
                    raise
                self._wait(api, self.backoff.delay(attempt, self._rng), deadline)
