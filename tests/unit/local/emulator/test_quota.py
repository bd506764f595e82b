"""Quota mode: token buckets (pure) and the emulator answering ThrottlingException."""

from __future__ import annotations

import botocore.config
import botocore.retries.standard
import pytest
from botocore.exceptions import ClientError

from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.local.emulator.quota import DEFAULT_RATES, Quotas, parse_rates


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_rate_per_second_then_refills():
    clock = FakeClock()
    quotas = Quotas(clock=clock)
    quotas.configure({"RegisterCertificateWithoutCA": 10, "*": 100})

    first_second = [quotas.acquire("RegisterCertificateWithoutCA") for _ in range(12)]
    assert first_second.count(True) == 10
    assert first_second[10:] == [False, False]

    clock.now = 0.5  # half a second refills half the bucket
    assert [quotas.acquire("RegisterCertificateWithoutCA") for _ in range(6)].count(True) == 5
    # Other operations use "*" and their own bucket.
    assert all(quotas.acquire("CreateThing") for _ in range(100))
    assert not quotas.acquire("CreateThing")


def test_no_rate_means_unlimited_and_sub_one_rates_still_pass_sometimes():
    clock = FakeClock()
    quotas = Quotas(clock=clock)
    quotas.configure({"AttachPolicy": 0.5})
    assert all(quotas.acquire("CreateThing") for _ in range(1000))
    assert quotas.acquire("AttachPolicy") and not quotas.acquire("AttachPolicy")
    clock.now = 2.0
    assert quotas.acquire("AttachPolicy")


def test_parse_rates_presets_json_and_errors():
    assert parse_rates("default") == DEFAULT_RATES
    assert parse_rates("off") == {} == parse_rates(None)
    assert parse_rates('{"AttachPolicy": 15}') == {"AttachPolicy": 15.0}
    with pytest.raises(ValueError, match="'AttachPolicy' must be a positive number"):
        parse_rates({"AttachPolicy": 0})
    with pytest.raises(ValueError, match="not a preset"):
        parse_rates("fast")


def test_emulator_throttles_per_operation_and_switches_at_runtime(emulator_url, aws):
    iot = aws("iot", config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 1}))
    try:
        # One call per 10 s: the bucket holds one token, so the calls after the first are throttled.
        assert emulator.set_quotas(emulator_url, {"ListThings": 0.1}) == {"ListThings": 0.1}
        outcomes = []
        for _ in range(3):
            try:
                iot.list_things()
                outcomes.append("ok")
            except ClientError as error:
                outcomes.append(error.response["Error"]["Code"])
                assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert outcomes == ["ok", "ThrottlingException", "ThrottlingException"]
        assert all(iot.list_thing_types() for _ in range(5))  # no rate for ListThingTypes

        emulator.set_quotas(emulator_url, "off")
        assert all(iot.list_things() for _ in range(10))
    finally:
        emulator.set_quotas(emulator_url, "off")


def test_botocore_retries_a_throttled_call(emulator_url, aws, monkeypatch):
    # botocore waits rand(0, 1) * 2**i s before a throttled call's retry i (8 s in one run here); a fixed
    # 0.3 s, 1.5 tokens at 5/s, keeps what is tested: the emulator's answer is one botocore retries.
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.3)
    iot = aws("iot", config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 10}))
    try:
        emulator.set_quotas(emulator_url, {"ListThings": 5})
        answers = [iot.list_things() for _ in range(8)]
        assert sum(a["ResponseMetadata"]["RetryAttempts"] for a in answers) >= 1
    finally:
        emulator.set_quotas(emulator_url, "off")


def test_bad_rates_are_refused_with_the_reason(emulator_url):
    with pytest.raises(ValueError, match="positive number"):
        emulator.set_quotas(emulator_url, {"ListThings": -1})
