"""Stack configuration from environment variables (and the cdktf context ``env``): :class:`StackConfig`.

Pure Python. ``StackConfig.from_env`` asks one reader per concern; each concern is a module named
for it, whose docstring lists the settings it reads, their defaults and why they go together:

==============  ===================================================================================
module          concern (settings)
==============  ===================================================================================
``deployment``  where the deployment goes and what marks it: the environment suffix (THINGPRESS_ENV
                or the cdktf context ``env``), region, target, emulator endpoint, Terraform state
                backend, bucket and region; the tags on every resource
``iot``         the IoT side of each thing: created and existing policies and how they are
                attached, thing type, thing groups, thing prefix and name template
``importer``    the importer's budget: IoT request rates, import concurrency, backpressure window
``functions``   how the Lambda functions run: timeouts and queue visibility, reserved concurrency,
                runtime, architecture, log and audit retention
``vendors``     what is done with the vendors' certificates (expired, existing thing, Infineon
                bundle, new status) and the trusted Microchip signers
``reader``      reading them: ``Reader`` and :class:`ConfigError`
==============  ===================================================================================

Why split by concern: a reader gets only what its checks need from the others as arguments (the
suffix and region, whether the target is local), so a concern's rules can be read, and a setting
added, without the other thirty. Every error is collected: a reader reports a bad setting and goes
on with the default, and ``from_env`` raises one :class:`ConfigError` with one line per setting,
naming it. The readers run in the order the errors have always been listed in (a test asserts it);
that order interleaves some concerns, so ``iot``, ``functions`` and ``vendors`` have more than one
reader.

Set by the stack on the functions, never by hand (``thingpress.settings`` lists them all), e.g.
``THINGPRESS_AUDIT_TABLE``, the queue URLs, and ``THINGPRESS_EVENT_BUS``: the deployment's
EventBridge bus ``thingpress-<suffix>-events``, where the function that completes a manifest puts
one ``Manifest Completed`` event (``thingpress.events``; output ``event_bus_name``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from thingpress import backpressure, settings, thing_names

from stacks import defaults
from stacks.config import deployment, functions, importer, iot, vendors
from stacks.config.reader import ConfigError, Reader
from stacks.config.vendors import Signer
from stacks.naming import DEFAULT_ENV, PREVIEW_SUFFIX, Names

__all__ = ["ConfigError", "Signer", "StackConfig"]


@dataclass(frozen=True, slots=True)
class StackConfig:
    suffix: str = DEFAULT_ENV
    region: str = "us-east-1"
    target: str = "aws"
    endpoint: str = ""
    backend: str = "s3"
    state_bucket: str = ""
    state_region: str = ""
    #: existing IoT policies attached besides the created one (THINGPRESS_IOT_POLICY_NAME, comma-separated).
    iot_policy_names: tuple[str, ...] = ()
    iot_policy_document: str = ""
    thing_type: str = ""
    #: existing thing groups every thing joins besides the created one (THINGPRESS_THING_GROUP).
    thing_groups: tuple[str, ...] = ()
    policy_attachment: str = "thing-group"
    reserved_concurrency: str = "none"
    thing_prefix: str = ""
    #: ``thingpress.thing_names``: the default gives today's names (prefix + the vendor's name).
    thing_name_template: str = thing_names.DEFAULT_TEMPLATE
    expired_certificates: str = "reject"
    existing_thing: str = "keep"
    infineon_bundle: str = "E0E0"
    certificate_status: str = "ACTIVE"
    iot_tps: Mapping[str, float] = field(default_factory=lambda: dict(settings.DEFAULT_IOT_TPS))
    import_concurrency: int = 2
    import_window_minutes: float = backpressure.DEFAULT_WINDOW_MINUTES
    importer_timeout: int = defaults.IMPORTER_TIMEOUT_SECONDS
    provider_timeout: int = defaults.PROVIDER_TIMEOUT_SECONDS
    visibility_factor: float = defaults.VISIBILITY_FACTOR
    runtime: str = defaults.DEFAULT_RUNTIME
    architecture: str = defaults.DEFAULT_ARCHITECTURE
    log_retention_days: int = defaults.LOG_RETENTION_DAYS
    audit_retention_days: int = 365
    tags: Mapping[str, str] = field(default_factory=dict)
    signers: tuple[Signer, ...] = ()
    #: what synth prints as warnings and goes on: trusted Microchip signers expired or expiring
    #: within 90 days (``microchip_signers.signer_notices``).
    warnings: tuple[str, ...] = ()

    @property
    def names(self) -> Names:
        return Names(self.suffix, self.region)

    @property
    def stack_name(self) -> str:
        return self.names.stack

    @property
    def ephemeral(self) -> bool:
        """A local or PR-preview deployment: destroy must empty the bucket and drop the table."""
        return self.target == "local" or bool(PREVIEW_SUFFIX.match(self.suffix))

    @property
    def python_version(self) -> str:
        """``3.11`` for ``python3.11``: the layer's wheels target this."""
        return self.runtime.removeprefix("python")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, context_env: str | None = None,
                 now: datetime | None = None) -> StackConfig:
        """The configuration from ``environ`` (default the process environment); ``now`` (default the
        current time) judges the trusted signers' expiry.

        Each reader returns its concern's fields by name (a misspelt one is refused by the
        constructor); they are called in the order the errors are listed in.
        """
        read = Reader(os.environ if environ is None else environ)
        place = deployment.read(read, context_env)
        fields = {**place,
                  **iot.read(read, place["suffix"], place["region"]),
                  **importer.read(read),
                  **deployment.read_tags(read),
                  **functions.read_timeouts(read, local=place["target"] == "local"),
                  **iot.read_policy_attachment(read),
                  **functions.read_reserved_concurrency(read),
                  **vendors.read_rules(read),
                  **functions.read_runtime(read),
                  **vendors.read_signers(read, now or datetime.now(UTC))}
        read.check()
        return cls(**fields)
