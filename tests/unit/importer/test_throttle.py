"""thingpress.throttle with a fake clock: bucket rates, backoff, deadline, error classes."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, HTTPClientError

from thingpress.settings import DEFAULT_IOT_TPS, FunctionSettings
from thingpress.throttle import (
    Backoff, DeadlineExceeded, Throttle, ThrottleStats, TokenBucket, is_throttling, is_transient,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "Op")


def answering(answers: list) -> Callable[[], str]:
    """A call that answers each of ``answers`` in turn, raising the errors."""
    def op() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer
    return op


def test_buckets_split_the_account_budget_between_instances() -> None:
    settings = FunctionSettings(audit_table="t", import_concurrency=4,
                                iot_tps={**DEFAULT_IOT_TPS, "RegisterCertificateWithoutCA": 20})
    throttle = Throttle.from_settings(settings)
    assert throttle.rate("RegisterCertificateWithoutCA") == 5.0
    assert throttle.rate("AttachPolicy") == 15 / 4
    assert throttle.rate("CreateThing") == 25.0


def test_bucket_paces_calls_at_its_rate_after_the_burst() -> None:
    clock = FakeClock()
    throttle = Throttle({"Op": 5}, 1, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(25):
        throttle.call("Op", lambda: None)
    # 5 tokens of burst, then one every 0.2 s: 20 more calls take 4 s.
    assert clock.now - start == pytest.approx(4.0)
    assert throttle.stats.calls == 25


def test_bucket_is_thread_safe() -> None:
    bucket = TokenBucket(rate=100.0, capacity=100.0, clock=lambda: 0.0)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            wait = bucket.reserve()
            with lock:
                waits.append(wait or 0.0)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 200 reservations at a frozen instant: 100 free, then 0.01 s, 0.02 s ... 1.00 s, each exactly once.
    assert sorted(round(w, 6) for w in waits) == [0.0] * 100 + [round(i / 100, 6) for i in range(1, 101)]


def test_throttled_calls_back_off_with_full_jitter_and_are_counted() -> None:
    clock = FakeClock()
    throttle = Throttle({"Op": 100}, 1, clock=clock, sleep=clock.sleep, rng=lambda: 1.0,
                        backoff=Backoff(base=0.1, cap=1.0, max_attempts=6))
    answers = [client_error("ThrottlingException"), client_error("TooManyRequestsException", 429),
               client_error("Throttling"), client_error("RequestLimitExceeded"), "ok"]

    op = answering(answers)

    tally = ThrottleStats()
    assert throttle.call("Op", op, tally=tally) == "ok"
    # rng=1.0 gives the upper bound of each jitter window: min(cap, base * 2**attempt).
    assert clock.slept == pytest.approx([0.2, 0.4, 0.8, 1.0])
    assert (tally.calls, tally.throttled, tally.retries) == (5, 4, 4)
    assert throttle.stats.throttled == 4


def test_a_throttled_call_gives_its_token_back() -> None:
    # One instance's share of the default quota at concurrency 20: a token every 2 s. AWS refused
    # the first attempt, so the retry goes after its backoff alone, not after the next token too.
    clock = FakeClock()
    throttle = Throttle({"Op": 10}, 20, clock=clock, sleep=clock.sleep, rng=lambda: 0.5)
    answers = [client_error("ThrottlingException"), "ok", "ok"]

    op = answering(answers)

    assert throttle.call("Op", op) == "ok"
    assert clock.slept == pytest.approx([0.1])  # the backoff (0.5 * 0.1 * 2**1), no token wait
    assert throttle.call("Op", op) == "ok"  # the next call waits for the next token as before
    assert clock.slept == pytest.approx([0.1, 2.0])


def test_other_transient_errors_keep_their_token() -> None:
    # A 5xx may have been served (and counted against the quota): its token stays spent.
    clock = FakeClock()
    throttle = Throttle({"Op": 10}, 20, clock=clock, sleep=clock.sleep, rng=lambda: 0.5)
    answers = [client_error("InternalFailureException", 500), "ok"]

    op = answering(answers)

    assert throttle.call("Op", op) == "ok"
    assert clock.slept == pytest.approx([0.1, 1.9])  # the backoff, then the rest of the next token's wait


def test_full_jitter_stays_in_its_window() -> None:
    backoff = Backoff(base=0.1, cap=5.0)
    assert backoff.delay(3, lambda: 0.0) == 0.0
    assert backoff.delay(3, lambda: 0.5) == pytest.approx(0.4)
    assert backoff.delay(10, lambda: 1.0) == 5.0


def test_attempts_are_bounded_then_the_last_error_is_raised() -> None:
    clock = FakeClock()
    throttle = Throttle({"Op": 100}, 1, clock=clock, sleep=clock.sleep, backoff=Backoff(max_attempts=3))
    calls = []

    def op() -> None:
        calls.append(1)
        raise client_error("InternalFailure", 500)

    with pytest.raises(ClientError, match="InternalFailure"):
        throttle.call("Op", op)
    assert len(calls) == 3
    assert (throttle.stats.throttled, throttle.stats.retries) == (0, 2)


def test_permanent_errors_are_not_retried() -> None:
    throttle = Throttle({"Op": 100}, 1, sleep=lambda s: None)
    calls = []

    def op() -> None:
        calls.append(1)
        raise client_error("ResourceAlreadyExistsException", 409)

    with pytest.raises(ClientError):
        throttle.call("Op", op)
    assert calls == [1]


def test_codes_a_caller_names_are_retried_for_that_call_only() -> None:
    clock = FakeClock()
    throttle = Throttle({"Op": 100}, 1, clock=clock, sleep=clock.sleep, rng=lambda: 1.0,
                        backoff=Backoff(base=0.1, cap=1.0, max_attempts=6))
    answers = [client_error("DeleteConflictException", 409), client_error("DeleteConflictException", 409), "ok"]

    op = answering(answers)

    assert throttle.call("Op", op, retry_codes={"DeleteConflictException"}) == "ok"
    assert clock.slept == pytest.approx([0.2, 0.4])
    assert (throttle.stats.calls, throttle.stats.throttled, throttle.stats.retries) == (3, 0, 2)
    answers[:] = [client_error("DeleteConflictException", 409), "ok"]
    with pytest.raises(ClientError, match="DeleteConflictException"):  # not named for this call: at once
        throttle.call("Op", op)
    assert answers == ["ok"]


def test_a_token_past_the_deadline_raises_without_calling() -> None:
    clock = FakeClock()
    throttle = Throttle({"Op": 1}, 1, clock=clock, sleep=clock.sleep, margin=1.0)
    throttle.call("Op", lambda: None)  # the burst token
    calls = []
    with pytest.raises(DeadlineExceeded, match="Op: would need to wait"):
        throttle.call("Op", lambda: calls.append(1), deadline=clock.now + 1.5)
    assert calls == []
    assert clock.slept == []


def test_a_backoff_past_the_deadline_raises() -> None:
    clock = FakeClock()
    throttle = Throttle({"Op": 100}, 1, clock=clock, sleep=clock.sleep, rng=lambda: 1.0, margin=0.5,
                        backoff=Backoff(base=1.0, cap=10.0))

    def op() -> None:
        raise client_error("ThrottlingException")

    with pytest.raises(DeadlineExceeded):
        throttle.call("Op", op, deadline=clock.now + 3.0)
    # First backoff 2 s fits (2 < 3 - 0.5); the second (4 s) would pass the deadline.
    assert clock.slept == [2.0]
    assert throttle.stats.throttled == 2


def test_error_classes() -> None:
    assert is_throttling(client_error("ThrottlingException"))
    assert is_throttling(client_error("Anything", 429))
    assert not is_throttling(client_error("ServiceUnavailableException", 503))
    assert is_transient(client_error("ServiceUnavailableException", 503))
    assert is_transient(client_error("SomethingNew", 502))
    assert is_transient(EndpointConnectionError(endpoint_url="https://iot"))
    assert not is_transient(client_error("InvalidRequestException"))
    assert not is_transient(ValueError("x"))
    # botocore hands a failure while sending over as HTTPClientError, whatever the HTTP layer raised
    assert is_transient(HTTPClientError(error=ValueError("I/O operation on closed file.")))
