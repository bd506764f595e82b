"""Secure defaults, in one place. Constructs merge: these, then the caller's config,
then values the construct requires (e.g. a queue's visibility timeout derived from
its consumer's timeout). Pure Python.
"""

from __future__ import annotations

import math

# -- Lambda ---------------------------------------------------------------------------
RUNTIMES = ("python3.11", "python3.12", "python3.13")
ARCHITECTURES = ("x86_64", "arm64")
DEFAULT_RUNTIME = "python3.11"
DEFAULT_ARCHITECTURE = "x86_64"
#: pip --platform per Lambda architecture (the python3.11 runtime is Amazon Linux 2, glibc 2.26).
PIP_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
TRACING_MODE = "Active"
#: CloudWatch Logs retention; 1 year (checkov CKV_AWS_338). Allowed values per the Logs API.
LOG_RETENTION_DAYS = 365
LOG_RETENTION_CHOICES = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                         2192, 2557, 2922, 3288, 3653)

#: The provider streams a whole manifest and hands over to a continuation before it times out.
PROVIDER_TIMEOUT_SECONDS = 900
PROVIDER_MEMORY_MB = 1024
#: One manifest per invocation: a manifest is big, and a continuation is its own message.
PROVIDER_BATCH_SIZE = 1
#: ESM maximum concurrency per vendor (2 is the smallest value AWS accepts).
PROVIDER_MAX_CONCURRENCY = 2
IMPORTER_TIMEOUT_SECONDS = 60
#: The local target (emulator + runner) uses short timeouts so a crashed invocation's
#: messages come back in seconds, not minutes (fault-injection tests, demos).
LOCAL_PROVIDER_TIMEOUT_SECONDS = 60
LOCAL_IMPORTER_TIMEOUT_SECONDS = 20
#: The importer waits on its share of the IoT budget (about 5 certificates/s an instance,
#: ``default_import_concurrency``), so its billed duration is the pacing, and GB-seconds per certificate
#: are memory x concurrency / budget: nearly all of its cost, and at 256 MB a quarter of a run's
#: (issue 23). Its work is I/O, and a batch's records run at once in threads (``lambdas/importer``), so
#: the network waits overlap and CPU is what an instance needs: measured on the local runner over a
#: cost run (tests/benchmarks/bench_cost.py, 500 certificates, the importer workers' user+system time),
#: 8.7-10.2 ms of CPU (one core; three runs) per certificate's IoT calls and audit writes, and 71 MiB
#: of RSS, so 5 certificates/s need 0.05 vCPU. Lambda gives CPU in proportion to memory
#: (1,769 MB = 1 vCPU: "Lambda function memory", developer guide): 192 MB is 0.11 vCPU, 2.1x that
#: (256 MB was chosen for 1.8x against the 15.6 ms measured earlier). Not 128 MB, Lambda's smallest:
#: 0.072 vCPU leaves 1.4x, too little for a cold start's imports and for the pacing to hold when IoT
#: answers slowly.
IMPORTER_MEMORY_MB = 192
#: the watchdog: how often it runs (EventBridge), its timeout and memory.
WATCHDOG_SCHEDULE = "rate(5 minutes)"
WATCHDOG_TIMEOUT_SECONDS = 120
WATCHDOG_MEMORY_MB = 256
#: the results writer (thingpress.results): a million audit rows read and written as files take
#: minutes, so Lambda's longest timeout; the memory is for the CPU share (decoding DynamoDB's
#: typed items is most of the work: 1024 MB is about 0.6 vCPU), not the bytes (one query page
#: and two 8 MiB parts). One completion event per invocation.
RESULTS_TIMEOUT_SECONDS = 900
RESULTS_MEMORY_MB = 1024
RESULTS_BATCH_SIZE = 1
RESULTS_MAX_CONCURRENCY = 2
#: the lifecycle function (thingpress.lifecycle): a batch of 25 entries at the IoT budget (10/s an API
#: over its 2 instances: 5/s each) takes about 15 s (a describe and an update per certificate, a
#: thing's describe and update with attributes); 120 s leaves room for backoff. One batch an invocation.
LIFECYCLE_TIMEOUT_SECONDS = 120
LIFECYCLE_MEMORY_MB = 256
LIFECYCLE_BATCH_SIZE = 1
LIFECYCLE_MAX_CONCURRENCY = 2
LIFECYCLE_MAX_RECEIVE_COUNT = 5
#: Lambda's /tmp (ephemeral storage) range, MB.
MIN_EPHEMERAL_MB, MAX_EPHEMERAL_MB = 512, 10_240
#: /tmp headroom over a provider's worst case (the runtime, Python's own temporary files).
EPHEMERAL_HEADROOM_MB = 256
#: the largest SQS batch that needs no batching window.
MAX_IMPORT_BATCH_SIZE = 10
#: AWS: SQS event source mapping maximum concurrency is 2..1000.
MIN_ESM_CONCURRENCY, MAX_ESM_CONCURRENCY = 2, 1000

# -- SQS --------------------------------------------------------------------------------
#: AWS advises a visibility timeout of 6x the function timeout (at least 1x is required).
VISIBILITY_FACTOR = 6
#: local target: just over the timeout (AWS's minimum is 1x).
LOCAL_VISIBILITY_FACTOR = 1.5
MAX_VISIBILITY_TIMEOUT = 43_200
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
#: SQS's maximum retention: the DLQs, and the import queue (a paused import loses nothing for 14 days).
MAX_RETENTION_SECONDS = 14 * 24 * 3600
DLQ_RETENTION_SECONDS = MAX_RETENTION_SECONDS
IMPORT_QUEUE_RETENTION_SECONDS = MAX_RETENTION_SECONDS
#: the import queue's maxReceiveCount (the importer records FAILED on that attempt).
IMPORT_MAX_RECEIVE_COUNT = 5
#: at least 5: AWS's guidance for a queue that is a Lambda event source (a throttled poller's
#: receives count too, so a lower count sends healthy manifests to the DLQ).
MANIFEST_MAX_RECEIVE_COUNT = 5
#: the results queue's, for the same reason.
RESULTS_MAX_RECEIVE_COUNT = 5
RECEIVE_WAIT_SECONDS = 20

# -- S3 / KMS / DynamoDB / alarms -------------------------------------------------------------
NONCURRENT_VERSION_DAYS = 90
ABORT_MULTIPART_DAYS = 7
KMS_DELETION_WINDOW_DAYS = 30
ALARM_PERIOD_SECONDS = 300
#: import queue: alarm when the oldest message is older than this.
IMPORT_AGE_ALARM_SECONDS = 1800


def visibility_timeout(function_timeout: int, factor: float = VISIBILITY_FACTOR) -> int:
    """The queue visibility timeout for a consumer with ``function_timeout`` seconds."""
    return min(MAX_VISIBILITY_TIMEOUT, math.ceil(factor * function_timeout))


def ephemeral_storage_mb(worst_case_bytes: int) -> int:
    """/tmp for a function that may write ``worst_case_bytes`` there, within Lambda's range."""
    needed = -(-worst_case_bytes // (1024 * 1024)) + EPHEMERAL_HEADROOM_MB
    if needed > MAX_EPHEMERAL_MB:
        raise ValueError(f"{needed} MB of /tmp needed, more than Lambda's {MAX_EPHEMERAL_MB} MB")
    return max(MIN_EPHEMERAL_MB, needed)


def default_import_concurrency(iot_tps: dict[str, float]) -> int:
    """Importer instances: about 5 new certificates/s each at the slowest IoT API's budget."""
    slowest = min(iot_tps.values())
    return max(MIN_ESM_CONCURRENCY, min(MAX_ESM_CONCURRENCY, math.floor(slowest / 5)))


def import_batch_size(iot_tps: dict[str, float], concurrency: int, timeout: int = IMPORTER_TIMEOUT_SECONDS) -> int:
    """Import batch size: what one instance can finish in a quarter of its timeout at its share of the budget."""
    per_instance = min(iot_tps.values()) / concurrency
    return max(1, min(MAX_IMPORT_BATCH_SIZE, math.floor(per_instance * timeout / 4)))
