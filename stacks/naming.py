"""Every resource name of a thingpress deployment, and the AWS limits they must keep.

Pure Python (no cdktf import): the CLI and the integration tests use it too.

Names are ``thingpress-<suffix>-<purpose>``. The suffix is the environment
(``local``, the default, ``pr1234``, ``dev`` ...) and must match ``SUFFIX_PATTERN``: a lower-case
letter, then 1 to 11 lower-case letters or digits. With the longest suffix, the
longest region name and a 12-digit account id, every derived name still fits its
AWS limit; ``Names.check`` proves it for the actual suffix and region.

Vendor manifests are routed by S3 key prefix: ``incoming/<vendor>/``. The file
suffix is checked by the vendor's provider, so a wrong file still gets an audit
record instead of being silently ignored by the notification filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from thingpress.patterns import THING_NAME_CHAR, THING_NAME_MAX

PROJECT = "thingpress"
#: The one default environment, of the stack (a synth without THINGPRESS_ENV), the local cloud
#: (``thingpress local up``) and every ``thingpress`` command (without ``--env`` or THINGPRESS_ENV).
#: ``local`` rather than ``dev``: the local cloud is where a name is not given (``make demo``, the
#: tests, the hints ``local up`` and ``demo`` print), and a deployment to AWS always names its
#: environment (``make deploy ENV=pr123``, the preview workflow's ``pr<N>``; ``make deploy`` refuses
#: to guess). With ``dev`` the commands would miss the local cloud's stack after ``make demo``; with
#: two defaults, whichever deployment one made, the other's default named a stack not there.
DEFAULT_ENV = "local"
#: the environment suffix: starts with a letter, 2 to 12 characters, [a-z0-9].
SUFFIX_PATTERN = r"^[a-z][a-z0-9]{1,11}$"
SUFFIX_RE = re.compile(SUFFIX_PATTERN)
#: AWS region names, e.g. us-east-1, eu-central-2, us-gov-west-1, ap-southeast-7.
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$"
REGION_RE = re.compile(REGION_PATTERN)

#: vendors, in a fixed order (outputs, resources and zips follow it).
VENDORS = ("microchip", "infineon", "espressif", "generated")
#: the manifest file suffix of each vendor (checked by the provider, not by S3).
VENDOR_SUFFIXES = {"microchip": ".json", "infineon": ".7z", "espressif": ".csv", "generated": ".txt"}
INCOMING_PREFIX = "incoming/"
TRUST_PREFIX = "trust/"
MICROCHIP_SIGNERS_PREFIX = "trust/microchip-signers/"

#: function keys: the importer, one provider per vendor, the scheduled watchdog, the results
#: writer and the lifecycle function (also the lambdas/ folder names).
IMPORTER = "importer"
WATCHDOG = "watchdog"
RESULTS = "results"
LIFECYCLE = "lifecycle"


def provider_key(vendor: str) -> str:
    return f"provider_{vendor}"


FUNCTION_KEYS = (IMPORTER, *(provider_key(v) for v in VENDORS), WATCHDOG, RESULTS, LIFECYCLE)


def handler_module(key: str) -> str:
    """The handler module of a function (``lambdas/<key>/<module>.py``, handler ``<module>.lambda_handler``)."""
    if key not in FUNCTION_KEYS:
        raise ValueError(f"unknown function {key!r}; known: {', '.join(FUNCTION_KEYS)}")
    if key == IMPORTER:
        return "import_handler"
    return f"{key.removeprefix('provider_')}_handler"


def vendor_prefix(vendor: str) -> str:
    """The S3 key prefix a vendor's manifests are uploaded under."""
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}; known: {', '.join(VENDORS)}")
    return f"{INCOMING_PREFIX}{vendor}/"


#: The longest thing name a vendor gives: Microchip's uniqueId is 18 hex digits and
#: Espressif's MAC 12, Infineon and generated manifests use the certificate's
#: subject CN, at most 64 characters (RFC 5280 ub-common-name).
VENDOR_THING_NAME_MAX = {"microchip": 18, "infineon": 64, "espressif": 12, "generated": 64}
PREVIEW_SUFFIX = re.compile(r"^pr[0-9]+$")


def default_thing_prefix(suffix: str) -> str:
    """Preview environments (``pr<N>``) prefix thing names with ``pr<N>-``; others keep the vendor's names."""
    return f"{suffix}-" if PREVIEW_SUFFIX.match(suffix) else ""


def thing_prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot prefix every vendor's thing names, or None."""
    if not re.fullmatch(f"{THING_NAME_CHAR.pattern}*", prefix):
        return f"{prefix!r} may only hold letters, digits, ':', '_' and '-' (IoT thing-name characters)"
    vendor = max(VENDOR_THING_NAME_MAX, key=VENDOR_THING_NAME_MAX.__getitem__)
    longest = len(prefix) + VENDOR_THING_NAME_MAX[vendor]
    if longest > THING_NAME_MAX:  # IoT's thing-name rules: thingpress.patterns
        return (f"{prefix!r} is {len(prefix)} characters: with the longest {vendor} thing name "
                f"({VENDOR_THING_NAME_MAX[vendor]}) a thing name would be {longest} characters, "
                f"over IoT's {THING_NAME_MAX}")
    return None


#: AWS name length limits (characters).
LIMITS = {
    "s3_bucket": 63,
    "iam_role": 64,
    "lambda_function": 64,
    "sqs_queue": 80,
    "dynamodb_table": 255,
    "lambda_layer": 140,
    "log_group": 512,
    "iot_policy": 128,
    "iot_thing_type": 128,
    "iot_thing_group": 128,
    "sns_topic": 256,
    "cloudwatch_alarm": 255,
    "cloudwatch_dashboard": 255,
    "kms_alias": 256,
    "eventbridge_rule": 64,
    "eventbridge_bus": 256,
}
#: an AWS account id is always 12 digits; names are checked with that length.
ACCOUNT_ID_LENGTH = 12
ACCOUNT_PLACEHOLDER = "0" * ACCOUNT_ID_LENGTH


@dataclass(frozen=True, slots=True)
class Names:
    """The names of one deployment (``suffix``) in one region."""

    suffix: str
    region: str

    @property
    def stack(self) -> str:
        return f"{PROJECT}-{self.suffix}"

    def _name(self, purpose: str) -> str:
        return f"{PROJECT}-{self.suffix}-{purpose}"

    def bucket(self, account_id: str) -> str:
        """Manifests bucket: account id and region make it globally unique."""
        return self._name(f"manifests-{account_id}-{self.region}")

    def artifacts_bucket(self, account_id: str) -> str:
        """Lambda code bucket (the deployer's; no function reads it): unique as :meth:`bucket` is."""
        return self._name(f"artifacts-{account_id}-{self.region}")

    def manifest_queue(self, vendor: str) -> str:
        return self._name(f"{vendor}-manifests")

    def manifest_dlq(self, vendor: str) -> str:
        return self._name(f"{vendor}-manifests-dlq")

    @property
    def import_queue(self) -> str:
        return self._name("import")

    @property
    def import_dlq(self) -> str:
        return self._name("import-dlq")

    @property
    def audit_table(self) -> str:
        return self._name("audit")

    def function(self, key: str) -> str:
        """Lambda function name for a function key (``importer``, ``provider_<vendor>``)."""
        if key not in FUNCTION_KEYS:
            raise ValueError(f"unknown function {key!r}; known: {', '.join(FUNCTION_KEYS)}")
        return self._name(key.replace("_", "-"))

    def role(self, key: str) -> str:
        return f"{self.function(key)}-role"

    def log_group(self, key: str) -> str:
        return f"/aws/lambda/{self.function(key)}"

    @property
    def log_group_prefix(self) -> str:
        """Every function log group of this deployment starts with this."""
        return f"/aws/lambda/{PROJECT}-{self.suffix}-"

    def schedule(self, key: str) -> str:
        """The EventBridge rule that runs a scheduled function (named after the function)."""
        return self.function(key)

    @property
    def layer(self) -> str:
        return self._name("shared")

    @property
    def iot_policy(self) -> str:
        return self._name("device")

    @property
    def thing_type(self) -> str:
        return self._name("device")

    @property
    def thing_group(self) -> str:
        return self._name("devices")

    @property
    def alarm_topic(self) -> str:
        return self._name("alarms")

    def alarm(self, what: str) -> str:
        return self._name(what)

    @property
    def dashboard(self) -> str:
        return self.stack

    @property
    def kms_alias(self) -> str:
        return f"alias/{self.stack}"

    @property
    def event_bus(self) -> str:
        """The deployment's EventBridge bus: the completion event (thingpress.events) goes there."""
        return self._name("events")

    @property
    def completion_rule(self) -> str:
        """The rule on :attr:`event_bus` that copies completion events to :attr:`completion_queue`."""
        return self._name("manifest-completed")

    @property
    def completion_queue(self) -> str:
        return self._name("manifest-completed")

    @property
    def results_rule(self) -> str:
        """The rule on :attr:`event_bus` that sends completion events to :attr:`results_queue`."""
        return self._name("results")

    @property
    def results_queue(self) -> str:
        """The results writer's queue (thingpress.results)."""
        return self._name("results")

    @property
    def results_dlq(self) -> str:
        return self._name("results-dlq")

    @property
    def lifecycle_queue(self) -> str:
        """Where ``thingpress activate`` and ``deactivate`` send a job's batches (thingpress.lifecycle)."""
        return self._name("lifecycle")

    @property
    def lifecycle_dlq(self) -> str:
        return self._name("lifecycle-dlq")

    @property
    def thing_topic_root(self) -> str:
        """Devices publish and subscribe under ``<root>/<thing name>/``."""
        return f"{PROJECT}"

    def all_names(self) -> list[tuple[str, str]]:
        """(limit kind, name) for every name, the bucket with a 12-digit account id."""
        out: list[tuple[str, str]] = [("s3_bucket", self.bucket(ACCOUNT_PLACEHOLDER)),
                                      ("s3_bucket", self.artifacts_bucket(ACCOUNT_PLACEHOLDER))]
        for vendor in VENDORS:
            out += [("sqs_queue", self.manifest_queue(vendor)), ("sqs_queue", self.manifest_dlq(vendor))]
        out += [("sqs_queue", self.import_queue), ("sqs_queue", self.import_dlq),
                ("dynamodb_table", self.audit_table), ("lambda_layer", self.layer)]
        for key in FUNCTION_KEYS:
            out += [("lambda_function", self.function(key)), ("iam_role", self.role(key)),
                    ("log_group", self.log_group(key)),
                    ("cloudwatch_alarm", self.alarm(f"{key.replace('_', '-')}-throttles"))]
        out += [("iot_policy", self.iot_policy), ("iot_thing_type", self.thing_type),
                ("iot_thing_group", self.thing_group), ("sns_topic", self.alarm_topic),
                ("cloudwatch_dashboard", self.dashboard), ("kms_alias", self.kms_alias),
                ("eventbridge_rule", self.schedule(WATCHDOG)), ("cloudwatch_alarm", self.alarm("manifests-stalled")),
                ("eventbridge_bus", self.event_bus), ("eventbridge_rule", self.completion_rule),
                ("sqs_queue", self.completion_queue), ("eventbridge_rule", self.results_rule),
                ("sqs_queue", self.results_queue), ("sqs_queue", self.results_dlq),
                ("cloudwatch_alarm", self.alarm("results-dlq-not-empty")),
                ("sqs_queue", self.lifecycle_queue), ("sqs_queue", self.lifecycle_dlq),
                ("cloudwatch_alarm", self.alarm("lifecycle-dlq-not-empty"))]
        return out

    def check(self) -> list[str]:
        """One message per name over its AWS limit (empty when all fit)."""
        return [
            f"name {name!r} ({kind}) is {len(name)} characters, over the AWS limit of {LIMITS[kind]}"
            for kind, name in self.all_names() if len(name) > LIMITS[kind]
        ]
