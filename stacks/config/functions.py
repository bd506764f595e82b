"""How the Lambda functions run: their timeouts and their queues' visibility, reserved concurrency,
runtime, architecture, and how long their logs and audit rows are kept.

These settings shape the functions and their queues (``stacks.constructs.functions``,
``stacks.constructs.queues``), not what the functions do with a certificate. A ``local`` target
(the emulator and its runner) gets shorter timeouts and a lower visibility factor by default, so
a crashed invocation's messages come back in seconds.

=====================================  ===========================================================
variable                               meaning (default)
=====================================  ===========================================================
THINGPRESS_IMPORTER_TIMEOUT            importer timeout, seconds (60; local 20)
THINGPRESS_PROVIDER_TIMEOUT            provider timeout, seconds (900; local 60)
THINGPRESS_VISIBILITY_FACTOR           queue visibility timeout / consumer timeout, 1..12 (6, AWS advice;
                                       local 1.5 so a crashed invocation's messages return in seconds)
THINGPRESS_RESERVED_CONCURRENCY        ``none`` or ``mapping``: reserve each function's mapping maximum
                                       concurrency (``none``: a new account cannot reserve any)
THINGPRESS_LAMBDA_RUNTIME              ``python3.11`` / ``python3.12`` / ``python3.13`` (``python3.11``)
THINGPRESS_LAMBDA_ARCHITECTURE         ``x86_64`` or ``arm64`` (``x86_64``)
THINGPRESS_LOG_RETENTION_DAYS          CloudWatch Logs retention (365)
THINGPRESS_AUDIT_RETENTION_DAYS        audit row TTL in days (365)
=====================================  ===========================================================

Three readers, because ``StackConfig.from_env`` lists errors in the order they always came in:
the timeouts, then (after the IoT policy attachment) the reservation, then (after the vendor
rules) the runtime and retentions.
"""

from __future__ import annotations

from typing import Any

from thingpress import settings

from stacks import defaults
from stacks.config.reader import Reader

RESERVED_CONCURRENCY = ("none", "mapping")


def read_timeouts(r: Reader, local: bool) -> dict[str, Any]:
    """``importer_timeout``, ``provider_timeout``, ``visibility_factor``; ``local``: the local target's defaults."""
    importer_timeout = r.integer("THINGPRESS_IMPORTER_TIMEOUT", defaults.LOCAL_IMPORTER_TIMEOUT_SECONDS if local
                                 else defaults.IMPORTER_TIMEOUT_SECONDS, 10, 900)
    provider_timeout = r.integer("THINGPRESS_PROVIDER_TIMEOUT", defaults.LOCAL_PROVIDER_TIMEOUT_SECONDS if local
                                 else defaults.PROVIDER_TIMEOUT_SECONDS, 30, 900)
    visibility_factor = defaults.LOCAL_VISIBILITY_FACTOR if local else float(defaults.VISIBILITY_FACTOR)
    raw_factor = r.get("THINGPRESS_VISIBILITY_FACTOR")
    if raw_factor:
        try:
            visibility_factor = float(raw_factor)
            if not 1 <= visibility_factor <= 12:
                raise ValueError
        except ValueError:
            r.errors.append(f"THINGPRESS_VISIBILITY_FACTOR: must be a number from 1 to 12, got {raw_factor!r}")
            visibility_factor = float(defaults.VISIBILITY_FACTOR)
    return {"importer_timeout": importer_timeout, "provider_timeout": provider_timeout,
            "visibility_factor": visibility_factor}


def read_reserved_concurrency(r: Reader) -> dict[str, Any]:
    """``reserved_concurrency``."""
    return {"reserved_concurrency": r.choice("THINGPRESS_RESERVED_CONCURRENCY", RESERVED_CONCURRENCY, "none")}


def read_runtime(r: Reader) -> dict[str, Any]:
    """``runtime``, ``architecture``, ``log_retention_days``, ``audit_retention_days``."""
    return {
        "runtime": r.choice("THINGPRESS_LAMBDA_RUNTIME", defaults.RUNTIMES, defaults.DEFAULT_RUNTIME),
        "architecture": r.choice("THINGPRESS_LAMBDA_ARCHITECTURE", defaults.ARCHITECTURES,
                                 defaults.DEFAULT_ARCHITECTURE),
        "log_retention_days": _log_retention(r.get("THINGPRESS_LOG_RETENTION_DAYS"), r.errors),
        "audit_retention_days": r.integer(settings.AUDIT_RETENTION_DAYS, 365, 1, 3650),
    }


def _log_retention(raw: str, errors: list[str]) -> int:
    if not raw:
        return defaults.LOG_RETENTION_DAYS
    if not raw.isdigit() or int(raw) not in defaults.LOG_RETENTION_CHOICES:
        errors.append(f"THINGPRESS_LOG_RETENTION_DAYS: must be one of "
                      f"{', '.join(map(str, defaults.LOG_RETENTION_CHOICES))}, got {raw!r}")
        return defaults.LOG_RETENTION_DAYS
    return int(raw)
