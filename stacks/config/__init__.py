"""Stack configuration from environment variables (and the cdktf context ``env``).

Pure Python. ``StackConfig.from_env`` collects every error and raises one
``ConfigError`` with one line per setting, naming it.

=====================================  ===========================================================
variable                               meaning (default)
=====================================  ===========================================================
THINGPRESS_ENV / context ``env``       environment suffix, ``^[a-z][a-z0-9]{1,11}$`` (``local``: naming.DEFAULT_ENV)
THINGPRESS_REGION                      AWS region (``us-east-1``)
THINGPRESS_TARGET                      ``aws`` or ``local`` (an AWS emulator) (``aws``)
THINGPRESS_ENDPOINT                    emulator URL for ``local`` (``http://127.0.0.1:5000``)
THINGPRESS_BACKEND                     ``s3`` or ``local`` state (``s3`` for aws when a state bucket
                                       is set, else ``local``: state in build/state/, never committed)
THINGPRESS_STATE_BUCKET                S3 state bucket (required for the s3 backend)
THINGPRESS_STATE_REGION                state bucket region (the region)
THINGPRESS_IOT_POLICY_NAME             existing IoT policies (comma-separated) attached besides the one
                                       the stack always creates, as THINGPRESS_POLICY_ATTACHMENT says;
                                       each name once, 1-128 of [\\w+=,.@-] (IoT's policyName)
THINGPRESS_IOT_POLICY_DOCUMENT         JSON file (or inline JSON) for the created policy (least privilege)
THINGPRESS_THING_TYPE                  existing thing type (none: the stack creates one)
THINGPRESS_THING_GROUP                 existing thing groups (comma-separated) every thing also joins,
                                       besides the one the stack always creates (that one carries the
                                       policies in ``thing-group`` mode); each name once, 1-128 of
                                       [a-zA-Z0-9:_-], at most 9 (a thing is in at most 10 groups,
                                       one per hierarchy, never a dynamic one)
THINGPRESS_POLICY_ATTACHMENT           ``thing-group``: the device policy is attached once, to the thing
                                       group, and each thing inherits it (4 IoT calls per certificate,
                                       no iot:AttachPolicy grant); ``certificate``: attached to each
                                       certificate (5 calls) (``thing-group``)
THINGPRESS_RESERVED_CONCURRENCY        ``none`` or ``mapping``: reserve each function's mapping maximum
                                       concurrency (``none``: a new account cannot reserve any)
THINGPRESS_THING_PREFIX                prepended to every vendor thing name (``pr<N>-`` for preview
                                       suffixes ``pr<N>``, none otherwise; ``none`` for no prefix);
                                       checked against the 128-character thing-name limit
THINGPRESS_THING_NAME_TEMPLATE         each device's thing name from ``{prefix}`` (the prefix above),
                                       ``{vendor}``, ``{name}`` (the vendor's name for the device),
                                       ``{serial}`` (certificate serial, hex), ``{fingerprint}``
                                       (certificate id) (``{prefix}{name}``: today's names); refused at
                                       synth if a placeholder is unknown, no ``{name}``/``{serial}``/
                                       ``{fingerprint}`` is used, the text holds characters IoT refuses
                                       or a name could exceed 128 characters (``thingpress.thing_names``)
THINGPRESS_EXPIRED_CERTIFICATES        ``reject`` or ``import`` (``reject``)
THINGPRESS_EXISTING_THING              ``keep`` or ``reject`` (``keep``)
THINGPRESS_INFINEON_BUNDLE             ``E0E0``, ``E0E1`` or ``E0E2`` (``E0E0``)
THINGPRESS_CERTIFICATE_STATUS          ``ACTIVE`` or ``INACTIVE``: new certificates' status (``ACTIVE``)
THINGPRESS_IOT_TPS                     JSON {IoT API: requests/s} over the AWS default quotas
THINGPRESS_IMPORT_CONCURRENCY          importer maximum concurrency, 2..1000 (from the budget)
THINGPRESS_IMPORT_WINDOW_MINUTES       backpressure: the import queue holds at most this many minutes of
                                       the importer's budget, shared by the manifests being parsed;
                                       a number, more than 0 and at most 1440 (10; ``thingpress.backpressure``)
THINGPRESS_IMPORTER_TIMEOUT            importer timeout, seconds (60; local 20)
THINGPRESS_PROVIDER_TIMEOUT            provider timeout, seconds (900; local 60)
THINGPRESS_VISIBILITY_FACTOR           queue visibility timeout / consumer timeout, 1..12 (6, AWS advice;
                                       local 1.5 so a crashed invocation's messages return in seconds)
THINGPRESS_LAMBDA_RUNTIME              ``python3.11`` / ``python3.12`` / ``python3.13`` (``python3.11``)
THINGPRESS_LAMBDA_ARCHITECTURE         ``x86_64`` or ``arm64`` (``x86_64``)
THINGPRESS_LOG_RETENTION_DAYS          CloudWatch Logs retention (365)
THINGPRESS_AUDIT_RETENTION_DAYS        audit row TTL in days (365)
THINGPRESS_TAGS                        JSON {key: value} added to every resource
THINGPRESS_MICROCHIP_SIGNERS_DIR       folder of trusted Microchip signer certificates, uploaded to
                                       ``trust/microchip-signers/`` (``../shared/vendor-samples/
                                       microchip-signers`` when it exists; ``none`` for no signers);
                                       every file must be a certificate file the functions read
                                       (``thingpress.vendors.microchip_signers.read_signer_file``)
=====================================  ===========================================================

Set by the stack on the functions, never by hand (``thingpress.settings`` lists them all), e.g.
``THINGPRESS_AUDIT_TABLE``, the queue URLs, and ``THINGPRESS_EVENT_BUS``: the deployment's
EventBridge bus ``thingpress-<suffix>-events``, where the function that completes a manifest puts
one ``Manifest Completed`` event (``thingpress.events``; output ``event_bus_name``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from thingpress import backpressure, settings, thing_names
from thingpress.vendors import microchip_signers

from stacks import defaults
from stacks.config import deployment, functions, importer, iot
from stacks.config.reader import ConfigError, Reader
from stacks.naming import DEFAULT_ENV, Names

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SIGNERS_DIR = REPO.parent / "shared" / "vendor-samples" / "microchip-signers"
_PEM_CERT = "-----BEGIN CERTIFICATE-----"
__all__ = ["ConfigError", "StackConfig"]


@dataclass(frozen=True, slots=True)
class Signer:
    """A trusted Microchip manifest signer certificate, read at synth."""

    file_name: str
    pem: str


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
        return self.target == "local" or bool(re.match(r"^pr[0-9]+$", self.suffix))

    @property
    def python_version(self) -> str:
        """``3.11`` for ``python3.11``: the layer's wheels target this."""
        return self.runtime.removeprefix("python")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, context_env: str | None = None,
                 now: datetime | None = None) -> StackConfig:
        """The configuration from ``environ`` (default the process environment); ``now`` (default the
        current time) judges the trusted signers' expiry."""
        read = Reader(os.environ if environ is None else environ)
        env, errors, choice = read.env, read.errors, read.choice

        place = deployment.read(read, context_env)
        suffix, region, target = place["suffix"], place["region"], place["target"]

        things = iot.read(read, suffix, region)

        budget = importer.read(read)
        tags = deployment.read_tags(read)

        timeouts = functions.read_timeouts(read, target == "local")
        attachment = iot.read_policy_attachment(read)
        reserved = functions.read_reserved_concurrency(read)
        expired = choice(settings.EXPIRED_CERTIFICATES, settings.EXPIRED_POLICIES, "reject")
        existing = choice(settings.EXISTING_THING, settings.EXISTING_THING_POLICIES, "keep")
        bundle = choice(settings.INFINEON_BUNDLE, settings.INFINEON_BUNDLES, "E0E0")
        certificate_status = choice(settings.CERTIFICATE_STATUS, settings.CERTIFICATE_STATUSES, "ACTIVE")
        runtime = functions.read_runtime(read)
        signers, signer_certificates = _signers(env, errors)
        read.check()
        return cls(
            **place, **things, **budget, **tags, **timeouts, **attachment, **reserved,
            expired_certificates=expired, existing_thing=existing, infineon_bundle=bundle,
            certificate_status=certificate_status, **runtime, signers=signers,
            warnings=tuple(microchip_signers.signer_notices(signer_certificates, now or datetime.now(UTC))),
        )


def _signers(env: Mapping[str, str], errors: list[str]) -> tuple[tuple[Signer, ...], list[x509.Certificate]]:
    """The signer files to upload, and their certificates."""
    name = "THINGPRESS_MICROCHIP_SIGNERS_DIR"
    raw = env.get(name, "").strip()
    if raw.lower() == "none":
        return (), []
    folder = Path(raw) if raw else DEFAULT_SIGNERS_DIR
    if not folder.is_dir():
        if raw:
            errors.append(f"{name}: {raw} is not a folder")
        return (), []
    out: list[Signer] = []
    read: list[x509.Certificate] = []
    for path in microchip_signers.signer_paths(folder):
        if not re.match(r"^[A-Za-z0-9._\-]+$", path.name):
            errors.append(f"{name}: {path.name}: file name must be [A-Za-z0-9._-] (it becomes an S3 key)")
            continue
        try:
            data = path.read_bytes()
            certificates = microchip_signers.read_signer_file(path.name, data)
        except OSError as exc:
            errors.append(f"{name}: {path.name}: cannot be read ({exc.__class__.__name__})")
            continue
        except microchip_signers.SignerFileError as exc:
            errors.append(f"{name}: {exc.reason}")
            continue
        # Uploaded as text: a PEM file as it is, a DER certificate PEM-encoded.
        pem = data.decode("ascii") if _PEM_CERT.encode() in data else "".join(
            c.public_bytes(Encoding.PEM).decode("ascii") for c in certificates)
        out.append(Signer(path.name, pem))
        read.extend(certificates)
    if not out and not any(e.startswith(name) for e in errors):
        errors.append(f"{name}: {raw or folder} holds no certificate files")
    return tuple(out), read
