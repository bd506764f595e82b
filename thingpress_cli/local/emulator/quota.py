"""Quota mode: per-operation token buckets, as AWS IoT meters its APIs.

Rates are requests per second by operation name, with ``"*"`` for every other
operation; an operation without a rate (and no ``"*"``) is unlimited. A bucket
holds one second's worth of tokens (AWS allows a burst of about the rate) and
refills continuously. Named presets: :data:`PRESETS` (``default`` = AWS default
account quotas, ``raised`` = the usual raised quotas, ``off``).

Pure logic: the clock is injected so tests run without sleeping.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from thingpress.iot_quotas import IOT_API_QUOTAS

#: Environment variable holding a JSON object of rates, or a preset name.
QUOTAS_SETTING = "THINGPRESS_EMULATOR_QUOTAS"

#: AWS IoT default account quotas (requests per second) for the calls thingpress makes: the importer's
#: from the one dated table of them (``thingpress.iot_quotas``), and those of ``plan``'s reads.
DEFAULT_RATES: dict[str, float] = {
    **{api: quota.default for api, quota in IOT_API_QUOTAS.items()},
    "DescribeCertificate": 10,
    "DescribeThing": 350,
    "*": 100,
}
#: The quotas most accounts get raised to on request.
RAISED_RATES: dict[str, float] = {**DEFAULT_RATES, "RegisterCertificateWithoutCA": 100, "DescribeCertificate": 100, "AttachPolicy": 100}
PRESETS: dict[str, dict[str, float]] = {"default": DEFAULT_RATES, "raised": RAISED_RATES, "off": {}}


def parse_rates(value: str | Mapping[str, float] | None) -> dict[str, float]:
    """Rates from a preset name, a JSON object text or a mapping; raises ValueError naming the problem."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        if value in PRESETS:
            return dict(PRESETS[value])
        try:
            value = json.loads(value)
        except ValueError as error:
            raise ValueError(f"quotas: not a preset ({', '.join(PRESETS)}) nor a JSON object: {value!r}") from error
    if not isinstance(value, Mapping):
        raise ValueError(f"quotas: expected an object of operation -> requests per second, got {value!r}")
    rates: dict[str, float] = {}
    for name, rate in value.items():
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0:
            raise ValueError(f"quotas: rate for {name!r} must be a positive number, got {rate!r}")
        rates[str(name)] = float(rate)
    return rates


@dataclass
class Bucket:
    """A token bucket of ``rate`` tokens per second holding at most ``max(rate, 1)`` tokens."""

    rate: float
    tokens: float
    stamp: float

    @property
    def capacity(self) -> float:
        return max(self.rate, 1.0)

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Quotas:
    """Thread-safe per-operation rate limits, replaceable at runtime."""

    rates: dict[str, float] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, Bucket] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def configure(self, value: str | Mapping[str, float] | None) -> None:
        """Replace the rates (preset name, JSON text or mapping); buckets start full."""
        rates = parse_rates(value)
        with self._lock:
            self.rates = rates
            self._buckets = {}

    def acquire(self, operation: str) -> bool:
        """Take one token for ``operation``; False means the call is throttled."""
        rate = self.rates.get(operation, self.rates.get("*"))
        if rate is None:
            return True
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(operation)
            if bucket is None:
                bucket = self._buckets[operation] = Bucket(rate, max(rate, 1.0), now)
            return bucket.take(now)
