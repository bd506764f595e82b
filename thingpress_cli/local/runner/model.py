"""What the runner reads from the emulator and what an invocation gives back: plain records."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Layer:
    arn: str
    sha: str
    location: str


@dataclass(frozen=True)
class FunctionSpec:
    """What a deployed function runs with, as read from the emulator."""

    name: str
    arn: str
    handler: str
    timeout: int
    memory: int
    environment: tuple[tuple[str, str], ...]
    code_sha: str
    code_location: str
    layers: tuple[Layer, ...] = ()
    reserved_concurrency: int | None = None
    architectures: tuple[str, ...] = ("x86_64",)
    #: /tmp size, MB (Lambda's ``EphemeralStorage.Size``).
    ephemeral_mb: int = 512
    #: The execution role's temporary credentials (AWS_ACCESS_KEY_ID, ...), as Lambda hands them
    #: to the function: the emulator knows the caller's role by them (``local/emulator/s3_rules.py``).
    credentials: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MappingSpec:
    """An SQS event source mapping and the settings the poller honours."""

    uuid: str
    queue_arn: str
    queue_url: str
    batch_size: int
    concurrency: int
    report_batch_item_failures: bool
    function: FunctionSpec


@dataclass(frozen=True)
class ScheduleSpec:
    """An EventBridge rule with a rate schedule and one function target."""

    rule_name: str
    rule_arn: str
    expression: str
    period: float
    target_id: str
    function: FunctionSpec

    @property
    def key(self) -> str:
        return f"{self.rule_arn}#{self.target_id}"


@dataclass
class Outcome:
    """One invocation's result, as the runner sees it."""

    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    timed_out: bool = False


@dataclass
class Stats:
    """Counters for status lines and benchmarks."""

    invocations: int = 0
    failures: int = 0
    messages: int = 0
    deleted: int = 0
    overhead_ms: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: float) -> None:
        with self._lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)
