"""The environment contract between the stack and the functions.

The stack (``stacks/``) sets these variables from resource references; the
functions read them only through ``FunctionSettings.from_env``. Neither side types
a variable name by hand: both import the constants below.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from thingpress.backpressure import DEFAULT_WINDOW_MINUTES
from thingpress.errors import ThingpressError
from thingpress.iot_quotas import IOT_API_QUOTAS
from thingpress.thing_names import DEFAULT_TEMPLATE

AUDIT_TABLE = "THINGPRESS_AUDIT_TABLE"
IMPORT_QUEUE_URL = "THINGPRESS_IMPORT_QUEUE_URL"
#: the provider's own manifest queue: continuation messages for chunked manifests.
MANIFEST_QUEUE_URL = "THINGPRESS_MANIFEST_QUEUE_URL"
VENDOR = "THINGPRESS_VENDOR"
THING_TYPE = "THINGPRESS_THING_TYPE"
#: comma-separated thing groups every thing is added to (the stack's own first).
THING_GROUP = "THINGPRESS_THING_GROUP"
#: comma-separated IoT policy names attached to every certificate.
POLICY_NAMES = "THINGPRESS_POLICY_NAMES"
#: JSON object: IoT API name -> requests/second budget for the whole account.
IOT_TPS = "THINGPRESS_IOT_TPS"
#: the importer's maximum concurrency (the budget is split between instances).
IMPORT_CONCURRENCY = "THINGPRESS_IMPORT_CONCURRENCY"
#: the import queue's maxReceiveCount: the attempt that records FAILED.
MAX_RECEIVE_COUNT = "THINGPRESS_MAX_RECEIVE_COUNT"
#: "reject" (default) or "import": what an expired or not-yet-valid certificate gets.
EXPIRED_CERTIFICATES = "THINGPRESS_EXPIRED_CERTIFICATES"
#: "keep" (default: attach anyway, record THING_EXISTED) or "reject".
EXISTING_THING = "THINGPRESS_EXISTING_THING"
INFINEON_BUNDLE = "THINGPRESS_INFINEON_BUNDLE"
#: "ACTIVE" (default) or "INACTIVE": the status a newly registered certificate gets.
CERTIFICATE_STATUS = "THINGPRESS_CERTIFICATE_STATUS"
#: s3://bucket/prefix/ holding the trusted Microchip manifest signer certificates.
MICROCHIP_SIGNERS = "THINGPRESS_MICROCHIP_SIGNERS"
AUDIT_RETENTION_DAYS = "THINGPRESS_AUDIT_RETENTION_DAYS"
#: the environment suffix (``dev``, ``pr7`` ...): recorded on every thing created and every audit row.
ENVIRONMENT = "THINGPRESS_ENVIRONMENT"
#: prepended to every vendor thing name by the providers ("" keeps the vendor's names).
THING_PREFIX = "THINGPRESS_THING_PREFIX"
#: a provider hands a manifest over to a continuation message after this many entries
#: in one invocation (default 100000; the time left is watched as well).
PROVIDER_MAX_ENTRIES = "THINGPRESS_PROVIDER_MAX_ENTRIES"
#: the watchdog: the import dead-letter queue (checked empty before a manifest is marked STALLED).
IMPORT_DLQ_URL = "THINGPRESS_IMPORT_DLQ_URL"
#: the watchdog: JSON object, vendor -> that vendor's manifest queue URL (where continuations go).
MANIFEST_QUEUE_URLS = "THINGPRESS_MANIFEST_QUEUE_URLS"
#: the watchdog: a manifest with no progress for this many seconds is resumed or marked STALLED
#: (the stack sets twice the provider timeout; default twice the 900 s default timeout).
STALL_AFTER_SECONDS = "THINGPRESS_STALL_AFTER_SECONDS"
#: the thing name of each device, from placeholders (thingpress.thing_names; default ``{prefix}{name}``).
THING_NAME_TEMPLATE = "THINGPRESS_THING_NAME_TEMPLATE"
#: the EventBridge bus the completion event goes to (thingpress.events); unset: no event.
EVENT_BUS = "THINGPRESS_EVENT_BUS"
#: the providers: the import queue holds at most this many minutes of the importer's budget
#: (``thingpress.backpressure``; default 10; 0: no limit). The providers get ``IOT_TPS`` too.
IMPORT_WINDOW_MINUTES = "THINGPRESS_IMPORT_WINDOW_MINUTES"
#: the results writer: the bucket its results files go to (the manifests bucket; thingpress.results).
RESULTS_BUCKET = "THINGPRESS_RESULTS_BUCKET"

#: Every variable above; the stack refuses any other THINGPRESS_* name.
ALL = (
    AUDIT_TABLE, IMPORT_QUEUE_URL, MANIFEST_QUEUE_URL, VENDOR, THING_TYPE, THING_GROUP, POLICY_NAMES,
    IOT_TPS, IMPORT_CONCURRENCY, MAX_RECEIVE_COUNT, EXPIRED_CERTIFICATES, EXISTING_THING,
    INFINEON_BUNDLE, MICROCHIP_SIGNERS, AUDIT_RETENTION_DAYS, PROVIDER_MAX_ENTRIES, CERTIFICATE_STATUS, IMPORT_DLQ_URL,
    MANIFEST_QUEUE_URLS, STALL_AFTER_SECONDS, ENVIRONMENT, THING_PREFIX, EVENT_BUS,
    THING_NAME_TEMPLATE, IMPORT_WINDOW_MINUTES, RESULTS_BUCKET,
)

#: the stall threshold is this many of the longer of the provider and importer timeouts (no invocation
#: outlives its timeout: the watchdog recounts rows only when none is younger, thingpress.watchdog).
STALL_TIMEOUTS = 2
#: where the Infineon provider stages a reel's selected bundle, extracted once (same bucket and
#: KMS key as the manifests); the stack's lifecycle rule expires staged objects after STAGING_DAYS.
STAGING_PREFIX = "staging/"
STAGING_DAYS = 7
DEFAULT_STALL_AFTER_SECONDS = STALL_TIMEOUTS * 900

#: The default budget (requests/second) for the IoT APIs the importer calls: AWS's default quotas
#: (``thingpress.iot_quotas``, the one dated table of them).
DEFAULT_IOT_TPS: dict[str, float] = {api: quota.default for api, quota in IOT_API_QUOTAS.items()}

EXPIRED_POLICIES = ("reject", "import")
EXISTING_THING_POLICIES = ("keep", "reject")
INFINEON_BUNDLES = ("E0E0", "E0E1", "E0E2")
CERTIFICATE_STATUSES = ("ACTIVE", "INACTIVE")


class SettingsError(ThingpressError, ValueError):
    """A function's environment is incomplete or wrong; names the variable."""


@dataclass(frozen=True, slots=True)
class FunctionSettings:
    audit_table: str
    import_queue_url: str = ""
    manifest_queue_url: str = ""
    vendor: str = ""
    thing_type: str = ""
    #: the first (the stack's own) of ``thing_groups``; "" when there is none.
    thing_group: str = ""
    policy_names: tuple[str, ...] = ()
    iot_tps: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_IOT_TPS))
    import_concurrency: int = 1
    max_receive_count: int = 5
    expired_certificates: str = "reject"
    existing_thing: str = "keep"
    infineon_bundle: str = "E0E0"
    microchip_signers: str = ""
    audit_retention_days: int = 365
    provider_max_entries: int = 100_000
    import_dlq_url: str = ""
    manifest_queue_urls: dict[str, str] = field(default_factory=dict)
    stall_after_seconds: int = DEFAULT_STALL_AFTER_SECONDS
    certificate_status: str = "ACTIVE"
    environment: str = ""
    thing_prefix: str = ""
    import_window_minutes: float = DEFAULT_WINDOW_MINUTES
    event_bus: str = ""
    thing_name_template: str = DEFAULT_TEMPLATE
    results_bucket: str = ""
    #: every thing group a thing joins (``THINGPRESS_THING_GROUP``); empty: ``thing_group`` alone, if set.
    thing_groups: tuple[str, ...] = ()

    @property
    def every_thing_group(self) -> tuple[str, ...]:
        """The groups the importer adds each thing to, in order."""
        return self.thing_groups or ((self.thing_group,) if self.thing_group else ())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FunctionSettings:
        env = os.environ if environ is None else environ

        def need(name: str) -> str:
            value = env.get(name, "")
            if not value:
                raise SettingsError(f"environment variable {name} is not set")
            return value

        def integer(name: str, default: int) -> int:
            raw = env.get(name, "")
            try:
                return int(raw) if raw else default
            except ValueError:
                raise SettingsError(f"environment variable {name} must be an integer, got {raw!r}") from None

        def choice(name: str, options: tuple[str, ...], default: str) -> str:
            value = env.get(name, "") or default
            if value not in options:
                raise SettingsError(f"environment variable {name} must be one of {', '.join(options)}, got {value!r}")
            return value

        def minutes(name: str, default: float) -> float:
            raw = env.get(name, "")
            try:
                value = float(raw) if raw else default
            except ValueError:
                value = -1.0
            if not 0 <= value < float("inf"):
                raise SettingsError(f"environment variable {name} must be a number of minutes >= 0, got {raw!r}")
            return value

        tps = dict(DEFAULT_IOT_TPS)
        if env.get(IOT_TPS):
            try:
                given = json.loads(env[IOT_TPS])
                tps.update({str(k): float(v) for k, v in given.items()})
            except (ValueError, AttributeError, TypeError):
                raise SettingsError(f"environment variable {IOT_TPS} must be a JSON object of API name to number") from None
        urls: dict[str, str] = {}
        if env.get(MANIFEST_QUEUE_URLS):
            try:
                given = json.loads(env[MANIFEST_QUEUE_URLS])
                urls = {str(k): str(v) for k, v in given.items()}
            except (ValueError, AttributeError, TypeError):
                raise SettingsError(f"environment variable {MANIFEST_QUEUE_URLS} must be a JSON object of "
                                    "vendor to queue URL") from None
        groups = tuple(g for g in env.get(THING_GROUP, "").split(",") if g)
        return cls(
            audit_table=need(AUDIT_TABLE),
            import_queue_url=env.get(IMPORT_QUEUE_URL, ""),
            manifest_queue_url=env.get(MANIFEST_QUEUE_URL, ""),
            vendor=env.get(VENDOR, ""),
            thing_type=env.get(THING_TYPE, ""),
            thing_group=groups[0] if groups else "",
            thing_groups=groups,
            policy_names=tuple(p for p in env.get(POLICY_NAMES, "").split(",") if p),
            iot_tps=tps,
            import_concurrency=max(1, integer(IMPORT_CONCURRENCY, 1)),
            max_receive_count=max(1, integer(MAX_RECEIVE_COUNT, 5)),
            expired_certificates=choice(EXPIRED_CERTIFICATES, EXPIRED_POLICIES, "reject"),
            existing_thing=choice(EXISTING_THING, EXISTING_THING_POLICIES, "keep"),
            infineon_bundle=choice(INFINEON_BUNDLE, INFINEON_BUNDLES, "E0E0"),
            microchip_signers=env.get(MICROCHIP_SIGNERS, ""),
            audit_retention_days=integer(AUDIT_RETENTION_DAYS, 365),
            provider_max_entries=max(1, integer(PROVIDER_MAX_ENTRIES, 100_000)),
            import_dlq_url=env.get(IMPORT_DLQ_URL, ""),
            manifest_queue_urls=urls,
            stall_after_seconds=max(1, integer(STALL_AFTER_SECONDS, DEFAULT_STALL_AFTER_SECONDS)),
            certificate_status=choice(CERTIFICATE_STATUS, CERTIFICATE_STATUSES, "ACTIVE"),
            environment=env.get(ENVIRONMENT, ""),
            thing_prefix=env.get(THING_PREFIX, ""),
            event_bus=env.get(EVENT_BUS, ""),
            thing_name_template=env.get(THING_NAME_TEMPLATE, "") or DEFAULT_TEMPLATE,
            import_window_minutes=minutes(IMPORT_WINDOW_MINUTES, DEFAULT_WINDOW_MINUTES),
            results_bucket=env.get(RESULTS_BUCKET, ""),
        )
