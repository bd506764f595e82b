"""A deployment as the operator and the integration tests see it: its outputs and clients.

Everything is read through the outputs contract (``stacks.outputs``); nothing here
knows a resource name. Against the local emulator the endpoint URL comes from the
outputs too, so the same code serves a real AWS deployment unchanged.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from stacks import outputs as contract
from stacks.naming import DEFAULT_ENV
from thingpress.audit.keys import manifest_id
from thingpress.audit.states import MANIFEST_STATES
from thingpress.audit.table import AuditTable
from thingpress.settings import FunctionSettings, SettingsError
from thingpress.thing_names import ThingNameTemplate
from thingpress.vendors import VENDORS, vendor_for_key
from thingpress_cli.core.errors import DeploymentError, UsageError
from thingpress_cli.core.streams import warn
from thingpress_cli.core.toolchain import REPO

DEFAULT_OUTPUTS = REPO / "terraform-outputs.json"
MIB = 1024 * 1024
#: ``upload``: a multipart upload above 64 MiB in 64 MiB parts (a 10 GiB manifest is 160 parts of S3's 10,000).
TRANSFER = TransferConfig(multipart_threshold=64 * MIB, multipart_chunksize=64 * MIB)
ENV_OUTPUTS = "THINGPRESS_OUTPUTS"
ENV_SUFFIX = "THINGPRESS_ENV"
#: How the tests treat the deployment: ``remote`` or ``local`` (unset: ``local``). ``remote`` is set by
#: the preview workflow's test step and so by ``make test-preview-job``, which runs that step here
#: (``thingpress_cli.harness.preview_job``): the deployment is used only through its outputs and the AWS APIs,
#: never through the local cloud (no emulator or runner is started, no runner internals are touched),
#: even when it is on the emulator; a test that needs the local cloud (marker ``local_only``) skips,
#: with its reason. ``local``: a local run, where such a test needs its prerequisites (a deployment
#: on the emulator, the runner) and, in CI, fails without them (tests/conftest.py).
ENV_DEPLOYMENT = "THINGPRESS_DEPLOYMENT"
REMOTE, LOCAL = "remote", "local"


def deployment_arguments(args: argparse.Namespace, deployment: Any) -> list[str]:
    """The deployment options that name this deployment again (``--env`` always: a resume never guesses it)."""
    return ["--env", deployment.outputs.environment] + (["--outputs", str(args.outputs)] if args.outputs else [])


def treated_as_remote(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``THINGPRESS_DEPLOYMENT`` says the deployment is remote (see :data:`ENV_DEPLOYMENT`)."""
    value = (os.environ if environ is None else environ).get(ENV_DEPLOYMENT) or LOCAL
    if value not in (REMOTE, LOCAL):
        raise DeploymentError(f"{ENV_DEPLOYMENT}={value!r}: expected {REMOTE!r} or {LOCAL!r} (unset: {LOCAL!r})")
    return value == REMOTE


@dataclass(frozen=True)
class Uploaded:
    vendor: str
    bucket: str
    key: str
    version_id: str
    manifest_id: str


class Deployment:
    def __init__(self, outputs: contract.DeploymentOutputs):
        self.outputs = outputs

    # -- construction -------------------------------------------------------

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--outputs", default=None,
                            help=f"terraform-outputs.json (default: ${ENV_OUTPUTS} or {DEFAULT_OUTPUTS.name})")
        parser.add_argument("--env", default=None, help=f"environment suffix (default: ${ENV_SUFFIX} or {DEFAULT_ENV})")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Deployment:
        return cls.load(getattr(args, "outputs", None), getattr(args, "env", None))

    @classmethod
    def load(cls, outputs_path: str | os.PathLike | None = None, suffix: str | None = None) -> Deployment:
        path = Path(outputs_path or os.environ.get(ENV_OUTPUTS) or DEFAULT_OUTPUTS)
        suffix = suffix or os.environ.get(ENV_SUFFIX) or DEFAULT_ENV
        try:
            return cls(contract.load_outputs(path, suffix))
        except contract.OutputsError as exc:
            raise DeploymentError(str(exc)) from None

    # -- clients ---------------------------------------------------------------

    @cached_property
    def session(self) -> boto3.Session:
        if self.outputs.endpoint_url:
            # The local emulator accepts any credentials; never send real ones to it.
            return boto3.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                 region_name=self.outputs.region)
        # The credentials are boto3's own chain (AWS_PROFILE, which `thingpress --profile` sets, ...).
        # The region: AWS_REGION (`thingpress --region` sets it) as every AWS tool honours it, else
        # the deployment's own from its outputs; a different one is noted, as every call would then
        # ask a region where this deployment's resources are not.
        region = os.environ.get("AWS_REGION") or self.outputs.region
        if region != self.outputs.region:
            warn(f"note: AWS region {region} (AWS_REGION or --region), but {self.outputs.stack} is in "
                 f"{self.outputs.region} (its outputs)")
        return boto3.Session(region_name=region)

    def client(self, service: str) -> Any:
        config = Config(retries={"mode": "standard", "max_attempts": 8},
                        s3={"addressing_style": "path"} if self.outputs.endpoint_url else None)
        return self.session.client(service, endpoint_url=self.outputs.endpoint_url or None, config=config)

    def audit_table(self) -> AuditTable:
        return AuditTable(self.client("dynamodb"), self.outputs.audit_table_name)

    def thing_names(self) -> ThingNameTemplate:
        """How this deployment names things: the template and prefix of its outputs, rendered as its providers do."""
        return ThingNameTemplate(self.outputs.thing_name_template, self.outputs.thing_name_prefix)

    # -- operations --------------------------------------------------------------

    def upload(self, path: Path, vendor: str | None = None, key_name: str | None = None) -> Uploaded:
        """Put a manifest under its vendor's prefix; return where it went and its manifest id."""
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        vendor = vendor or vendor_for_key(path.name)
        if vendor is None:
            suffixes = ", ".join(f"{v.suffix} ({v.name})" for v in VENDORS.values())
            raise UsageError(f"{path}: cannot tell the vendor from the suffix (known: {suffixes}); pass --vendor")
        prefix = self.outputs.vendors[vendor].prefix
        key = f"{prefix}{key_name or path.name}"
        bucket = self.outputs.bucket_name
        # The manifest id is a digest of the exact object version the provider is told about (its
        # S3 event's versionId, or eTag on an unversioned bucket), so the upload must learn the version
        # *it* wrote. boto3's managed transfer (one PutObject under the threshold, a multipart upload
        # above: a single PUT is refused over 5 GB, the providers accept 10 GiB) returns nothing, and
        # a HeadObject after it could see a later upload of the same key. So the answer of the call
        # that creates the version (PutObject, or CompleteMultipartUpload) is kept as botocore parses
        # it, on this upload's own client: exactly the version this upload wrote.
        s3 = self.client("s3")
        created: list[dict[str, Any]] = []
        for operation in ("PutObject", "CompleteMultipartUpload"):
            s3.meta.events.register(f"after-call.s3.{operation}", lambda parsed, **_: created.append(parsed))
        s3.upload_file(str(path), bucket, key, Config=TRANSFER)
        (answer,) = created
        version = answer.get("VersionId") or answer["ETag"].strip('"')
        return Uploaded(vendor, bucket, key, version, manifest_id(vendor, bucket, key, version))

    def importer_settings(self) -> FunctionSettings:
        """The importer function's settings as deployed (IoT budget, policies, group, type).

        Read from the function's environment (``GetFunctionConfiguration``, read-only),
        through the same ``FunctionSettings.from_env`` the function itself uses.
        """
        client = self.client("lambda")
        try:
            config = client.get_function_configuration(FunctionName=self.outputs.importer_function_name)
        except client.exceptions.ResourceNotFoundException:
            raise DeploymentError(f"importer function {self.outputs.importer_function_name} not found: "
                                  "is this deployment up?") from None
        try:
            return FunctionSettings.from_env(config.get("Environment", {}).get("Variables", {}))
        except SettingsError as exc:
            raise DeploymentError(f"importer function {self.outputs.importer_function_name}: {exc}") from None

    def queue_depth(self, url: str) -> int:
        """Messages in a queue, visible and in flight (``ApproximateNumberOfMessages*``)."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        got = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(got.get(n, 0)) for n in names)

    def import_backlog(self) -> int:
        """Import messages waiting or in flight: certificates the importer has still to do."""
        return self.queue_depth(self.outputs.import_queue_url)

    def resolve_manifest(self, given: str) -> str:
        """A full manifest id from the id or a unique prefix of it (``status`` prints short ids)."""
        table = self.audit_table()
        if table.get_summary(given) is not None:
            return given
        matches = [r["manifest_id"] for r in self.manifest_summaries() if r.get("manifest_id", "").startswith(given)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UsageError(f"no manifest {given} in audit table {table.table}")
        raise UsageError(f"manifest id prefix {given} is ambiguous: {', '.join(sorted(matches))}")

    def manifest_summaries(self) -> list[dict[str, Any]]:
        """Every manifest summary as read (with its shards), newest first.

        Listed from the ``by_state`` index, a Query per manifest state: only summary items carry
        ``state``, so the index holds no certificate row, where a scan would read every one of them
        (100,000 rows for a manifest of 100,000). The shards, which carry the importer's counters,
        hold no ``state``: each listed manifest's summary and shards are then read with one Query on
        its partition (``AuditTable.get_summary``, strongly consistent).
        """
        table = self.audit_table()
        rows = [table.get_summary(mid) for mid in table.listed_by_state(MANIFEST_STATES)]
        return sorted((r for r in rows if r is not None), key=lambda r: r.get("started_at", ""), reverse=True)
