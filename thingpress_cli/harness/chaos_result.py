"""``make chaos``'s inputs and its one line: the settings of a run, its manifests, and what it counted.

One job: the data a chaos run (:mod:`.chaos`) starts from and ends with, and the summary line
tests and docs read (:meth:`Result.line`); the generated manifests are written here too, since
what they hold is what the run later checks for.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thingpress import certs
from thingpress_cli.core.certificates import device_certificates, make_ca, manifest_line

#: ``make chaos`` defaults: short enough for ``make test``, still at least MIN_KILLS kills.
DEFAULT_SECONDS = 20.0
DEFAULT_CERTIFICATES = 300
DEFAULT_MANIFESTS = 4
MIN_KILLS = 10
#: The faults the emulator injects during the chaos window (see thingpress_cli.local.emulator.faults).
FAULTS: dict[str, Any] = {"error_after_write": 0.03, "partial_batch": 0.2,
                          "throttle": {"every": 6.0, "length": 1.0, "share": 0.5}}
#: The share of DynamoDB writes answered with a transaction conflict during the window.
CONFLICTS = 0.03


@dataclass
class Settings:
    seconds: float = DEFAULT_SECONDS
    certificates: int = DEFAULT_CERTIFICATES
    manifests: int = DEFAULT_MANIFESTS
    min_kills: int = MIN_KILLS
    kill_interval: float = 1.0
    settle: float = 600.0  # seconds without progress, after the window
    seed: int = 0  # 0: a random seed (printed)
    faults: dict[str, Any] = field(default_factory=lambda: dict(FAULTS))
    #: the manifest queues' visibility timeout during the run (restored after), so a killed provider's
    #: message comes back in seconds rather than the deployment's 1.5 x 60 s; None: leave it as deployed
    manifest_visibility_seconds: int | None = None
    #: the share of DynamoDB writes answered with a transaction conflict during the window
    conflicts: float = CONFLICTS
    #: the providers' timeout during the run, and the watchdog's stall threshold derived from it as the stack
    #: derives it (both restored after): a killed provider's lease on its manifest lasts until its deadline
    #: (``chaos.function_timeouts``), and counts lost with a killed importer wait for that threshold
    #: (``chaos.stall_threshold``); None: leave them as deployed
    provider_timeout_seconds: int | None = None


@dataclass
class Manifest:
    path: Path
    expected: dict[str, str]  # fingerprint -> thing name
    manifest_id: str = ""


@dataclass
class Result:
    manifests: int
    certificates: int
    kills: int = 0
    effective: int = 0
    faults: int = 0
    conflicts: int = 0
    chains: int = 0
    lost: int = 0
    duplicated: int = 0
    failed: int = 0
    stalled: int = 0
    #: messages a DLQ held once the queues were idle, moved back (a message killed on each of its
    #: maxReceiveCount receives is dead-lettered on AWS too; the operator's answer is a redrive).
    redriven: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (self.lost, self.duplicated, self.failed, self.stalled) == (0, 0, 0, 0)

    def line(self) -> str:
        return (f"chaos: manifests {self.manifests}, certificates {self.certificates}, kills {self.kills} "
                f"(effective {self.effective}), faults {self.faults}, conflicts {self.conflicts}, redriven "
                f"{self.redriven}, max chains {self.chains}, lost {self.lost}, duplicated {self.duplicated}, "
                f"failed {self.failed}, stalled {self.stalled}")


def write_manifests(workdir: Path, settings: Settings) -> list[Manifest]:
    """``settings.manifests`` generated manifests of fresh certificates (thing names unique to this run)."""
    authority, tag = make_ca(), secrets.token_hex(4)
    sizes = [settings.certificates // settings.manifests + (i < settings.certificates % settings.manifests)
             for i in range(settings.manifests)]
    written = []
    for index, size in enumerate(sizes):
        path = workdir / f"chaos-{tag}-{index}.txt"
        expected = {}
        with path.open("wb") as out:
            for device in device_certificates(authority, size, prefix=f"Chaos-{tag}-{index}-"):
                out.write(manifest_line(device.pem))
                expected[certs.fingerprint(certs.der_bytes(device.certificate))] = device.name
        written.append(Manifest(path, expected))
    return written

