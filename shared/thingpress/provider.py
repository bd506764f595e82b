"""The provider runtime: one vendor manifest in S3 -> one import message per certificate.

Every provider function (``lambdas/provider_<vendor>``) is a thin handler over
``Provider``. A provider is triggered from its vendor's manifest queue; a message
body is one of

* an S3 event notification (``ObjectCreated:*``) naming the manifest object;
* the ``s3:TestEvent`` S3 sends when a notification is configured (ignored);
* a continuation message of our own (``thingpress.continue/1``), sent to the same
  queue when a manifest is too large or too slow for one invocation.

For a manifest the provider

1. derives the manifest id from the exact object version (``audit.manifest_id``)
   and creates the summary row; a manifest already finished (``parse_done``,
   ``COMPLETE``, ``REFUSED``) is left alone, so a redelivered event does nothing;
2. refuses, as a whole and for good (audit ``REFUSED`` with the reason, error log,
   message acknowledged), an object whose suffix is not this vendor's, an object
   that is gone, and a file that is not a readable manifest (``ManifestError``);
3. streams the object through the vendor parser with bounded memory (the Infineon
   parser spools a 7z reel to a bounded temporary file because py7zr needs to
   seek), hashing the manifest bytes on the way;
4. hands the entries to the pure core, ``provider_core.run_chunk``, through
   ``_AwsPorts``: the adapters for the audit table (certificate claims, refusal
   rows, checkpoints), SQS (``BatchSender``: ``SendMessageBatch``, 10 entries and
   under 256 KiB per call; only failed entries are retried), the Lambda deadline,
   and the backpressure seam ``room_for`` (``Provider.window``; none by default);
5. the core commits progress with ``AuditTable.checkpoint`` every
   ``checkpoint_every`` entries or ``checkpoint_seconds``, after the messages and
   refusal rows of that stretch are written, with the **cursor** after the last
   entry (``thingpress.cursor``); the counts committed are exactly the entries
   settled since the previous checkpoint, so a resumed run never counts anything twice;
6. duplicates within the manifest are found by claims in the audit table
   (``AuditTable.claim_certificates``: a conditional write per manifest and
   certificate; a certificate whose claim an earlier position holds is a
   duplicate), so memory does not grow with the manifest;
7. stops early when the Lambda is about to time out (checked between any two
   entries) or has handled ``max_entries_per_invocation`` entries: it commits a
   checkpoint and sends a continuation message; the next invocation reads the
   object **from the cursor** with a ranged GET (``Range: bytes=<offset>-``) and
   carries on, never reading or parsing the prefix again. A crash has the same
   effect through SQS redelivery. Certificates are re-sent only when an invocation
   dies between sending and committing (the importer is idempotent).
8. keeps the import queue within its window (``thingpress.backpressure``): the
   core enqueues at most the manifest's room (``Backpressure.room_for``, read once
   per invocation); when that fills it commits, notes the pause on the summary and
   sends a continuation delayed until the importer has made room (outcome ``paused``).

An Infineon 7z reel cannot be entered part-way: its selected bundle is extracted
once into a staged object (``staging_key``: same bucket, so the same KMS key;
expired by the stack's lifecycle rule on ``STAGING_PREFIX``, and extracted again by
a chunk that finds it gone: 404, or 403 as S3 answers a reader that may not list the
bucket), which every chunk reads from its cursor like a line
format. A checkpoint written before cursors existed is resumed from the top,
skipping the entries up to it (its certificates are claimed again on the way, so
later duplicates of them are still found). A chunk that started at a cursor
sees only the tail of the object: when it reaches the end it hashes the whole
object once more for the summary's ``sha256`` (``MAX_MANIFEST_BYTES`` bounds that).

One live chain per manifest
---------------------------
The messages that carry a manifest on (its S3 event, then one continuation after
another) form a *chain*. SQS can still hand out a second handle: a message whose
visibility timeout ran out comes back, S3 delivers an event twice, the watchdog
resumes a manifest it took for dead. Two handles at work would parse and send the
same stretches, and every copy costs the importer its IoT calls again. So the
summary says which handle may run next, and at most one invocation runs at a time:

* the summary holds ``chain`` (a number) and ``link`` (the token of the next message
  of the chain; none before the first hand-over, which is the S3 event's turn). Every
  continuation carries both (``Continuation``). A message whose chain and link are not
  the summary's is *stale*: acknowledged, nothing done (outcome ``stale``);
* an invocation on the live handle first takes the manifest's **lease**
  (``AuditTable.claim``: conditional on the handle and on no lease running, until the
  invocation's deadline). A second delivery of the same message meanwhile finds the
  lease taken (outcome ``busy``): it cannot know whether the holder is alive, so it
  replaces itself with the same handle, delayed until the lease ends, and is
  acknowledged. If the holder died, that message (or the holder's own, back from its
  visibility timeout) takes the lease then; if not, it is stale by then;
* before sending its continuation an invocation **hands over** (``AuditTable.hand_over``:
  a new link, the lease ended) and its checkpoints and pause notes are conditional on
  its handle, so an invocation overtaken by the watchdog finds itself *behind* and stops;
* the only way to start a new chain is ``AuditTable.bump_chain``, conditional on the
  chain, link and checkpoint the caller saw: the watchdog does it when a manifest has
  made no progress for twice the provider's timeout (``thingpress.watchdog``). From
  then on the older chain's handles are stale.

Every invocation sends at most one message, on its own handle, so handles never
multiply, and a manifest is never left without one for longer than the watchdog's
threshold.

An ambiguous checkpoint (the write applied, its response lost, the SDK's retry
failing the condition) is recognised as applied (``AuditTable.checkpoint``), so it
is not taken for being behind.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import io
import json
import math
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus, urlparse

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError
from cryptography import x509

from thingpress import audit, events
from thingpress.attributes import device_attributes
from thingpress.audit import AuditTable, ClaimsUnsettled, Handle, Progress
from thingpress.cursor import Cursor
from thingpress.backpressure import MAX_PAUSE_SECONDS, Backpressure, window_for
from thingpress.errors import Refused, ThingpressError
from thingpress.messages import MAX_MESSAGE_BYTES, ImportMessage
from thingpress.provider_core import Commit, Pace, run_chunk
from thingpress.records import Certificate, ManifestError
from thingpress.settings import STAGING_PREFIX, FunctionSettings, SettingsError
from thingpress.thing_names import ThingNameError, ThingNameTemplate
from thingpress.vendors import VENDORS, ParseOptions, microchip, parse_manifest, vendor_for_key

CONTINUE_SCHEMA = "thingpress.continue/1"
#: the largest manifest object accepted: a chunk that starts at a cursor hashes the whole object
#: once more when it reaches the end (the summary's sha256), which must fit in one invocation.
MAX_MANIFEST_BYTES = 10 * 1024**3
_STAGE_IN_MEMORY = 8 * 1024 * 1024
#: HeadObject's answers for a staged object that is gone (the lifecycle rule expires ``STAGING_PREFIX``
#: after a week; a manifest's dead-lettered message lives two, so a redrive can come after it).
#: 403 too: "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code
#: 403 Forbidden error" for a missing object (HeadObject API reference), and the provider role may
#: not list the bucket. Least privilege chose this over granting s3:ListBucket on ``staging/``: the
#: provider never lists, and the S3 pages name the permission without the request context of that
#: check, so a grant narrowed by an ``s3:prefix`` condition need not earn the 404 at all. Taking a
#: 403 for "gone" is safe: the staged key is the provider's own, and staging again re-reads the
#: reel (its version) and rewrites the same object; a real permission fault then fails the rewrite
#: or the read that follows (``_get``: a refusal naming the manifest), never five retries.
_STAGED_GONE = frozenset({"404", "NoSuchKey", "NotFound", "403", "AccessDenied", "Forbidden"})
#: SendMessageBatch takes at most this many entries per call.
MAX_BATCH_ENTRIES = 10
_READ_CHUNK = 256 * 1024
#: SQS's longest DelaySeconds, and Lambda's longest invocation (the lease without a context).
MAX_DELAY_SECONDS = 900
MAX_INVOCATION_MS = 900_000

logger = Logger(service="thingpress-provider")
metrics = Metrics(namespace="thingpress", service="thingpress-provider")


class ProviderError(ThingpressError, RuntimeError):
    """A transient failure: the message is retried and the manifest resumes from its checkpoint."""


class MessageTooLarge(Refused, ValueError):
    """An import message over SQS's size limit: its entry is refused (``BatchSender.add``)."""


@dataclass(frozen=True, slots=True)
class Tuning:
    """Pacing of one provider invocation. Defaults suit a 900 s Lambda."""

    #: commit a checkpoint at least every this many entries ...
    checkpoint_every: int = 500
    #: ... and at least every this many seconds.
    checkpoint_seconds: float = 2.0
    #: hand over to a continuation message after this many entries in one invocation;
    #: None: the ``THINGPRESS_PROVIDER_MAX_ENTRIES`` setting (default 100,000).
    max_entries_per_invocation: int | None = None
    #: stop when less than this is left of the invocation; None: min(30 s, 1/6 of the time at start).
    safety_margin_ms: int | None = None
    #: SendMessageBatch attempts for entries that keep failing.
    send_attempts: int = 6
    #: first retry delay in seconds, doubled per attempt (capped at 2 s).
    send_backoff: float = 0.05
    #: entries settled together: one claim transaction for their certificates (DynamoDB: at most 100).
    claim_batch: int = 100
    #: delay of the continuation sent when ``room_for`` leaves no room (a backpressure pause).
    pause_seconds: int = 60


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One exact S3 object version named by an event or a continuation."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None

    @property
    def version(self) -> str:
        """What identifies the version: the version id, else the ETag (unversioned bucket)."""
        return self.version_id or self.etag or ""

    @property
    def uri(self) -> str:
        suffix = f" (version {self.version_id})" if self.version_id else ""
        return f"s3://{self.bucket}/{self.key}{suffix}"


@dataclass(slots=True)
class RunResult:
    """What one invocation did with one manifest (returned for tests, tools and logs)."""

    manifest_id: str
    #: skipped (already done), refused, complete (parse finished), chunked (continuation sent),
    #: behind (another handle took over while this one ran: message acknowledged), deferred
    #: (continuation sent before starting), stale (the message is not the manifest's live
    #: handle: acknowledged), busy (another invocation holds the lease: the same handle sent
    #: again, delayed until the lease ends), paused (the import window is full: checkpoint
    #: committed, delayed continuation sent).
    outcome: str
    entries: int = 0
    queued: int = 0
    duplicates: int = 0
    rejected: int = 0
    reason: str | None = None


# -- message bodies --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Continuation:
    """Carry on with a manifest, as ``handle`` (module docstring, "One live chain")."""

    manifest_id: str
    vendor: str
    ref: ObjectRef
    handle: Handle = Handle()

    def encode(self) -> str:
        fields: dict[str, Any] = {
            "schema": CONTINUE_SCHEMA, "manifest_id": self.manifest_id, "vendor": self.vendor,
            "bucket": self.ref.bucket, "key": self.ref.key, "version_id": self.ref.version_id,
            "etag": self.ref.etag, "chain": self.handle.chain,
        }
        if self.handle.link is not None:
            fields["link"] = self.handle.link
        return json.dumps(fields, separators=(",", ":"), sort_keys=True)


class UnreadableMessage(Refused, ValueError):
    """A manifest queue message that is neither an S3 event nor a continuation."""


def parse_queue_message(body: str) -> list[ObjectRef] | Continuation | None:
    """Read a manifest queue message: object refs, a continuation, or None (nothing to do).

    None is returned for the ``s3:TestEvent`` and for events that create nothing.
    Raises ``UnreadableMessage`` with the reason for anything else.
    """
    try:
        data = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise UnreadableMessage(f"message body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UnreadableMessage("message body is not a JSON object")
    if data.get("Event") == "s3:TestEvent":
        return None
    if data.get("schema") == CONTINUE_SCHEMA:
        try:
            ref = ObjectRef(bucket=str(data["bucket"]), key=str(data["key"]),
                            version_id=data.get("version_id") or None, etag=data.get("etag") or None)
            chain, link = data.get("chain", 0), data.get("link")
        except KeyError as exc:
            raise UnreadableMessage(f"continuation message lacks field {exc}") from None
        if not isinstance(chain, int) or isinstance(chain, bool) or chain < 0:
            raise UnreadableMessage(f"continuation field chain must be a chain number (an integer >= 0), got {chain!r}")
        if link is not None and not (isinstance(link, str) and link):
            raise UnreadableMessage(f"continuation field link must be a non-empty string, got {link!r}")
        return Continuation(manifest_id=str(data["manifest_id"]), vendor=str(data["vendor"]), ref=ref,
                            handle=Handle(chain, link))
    records = data.get("Records")
    if not isinstance(records, list):
        raise UnreadableMessage("message is neither an S3 event notification nor a thingpress continuation")
    refs: list[ObjectRef] = []
    for record in records:
        try:
            if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith("ObjectCreated:"):
                logger.info("ignoring S3 event record", extra={"event_name": record.get("eventName")})
                continue
            obj = record["s3"]["object"]
            refs.append(ObjectRef(
                bucket=record["s3"]["bucket"]["name"],
                # S3 event keys are URL-encoded, spaces as '+'.
                key=unquote_plus(obj["key"]),
                version_id=obj.get("versionId") or None,
                etag=obj.get("eTag") or None,
                size=obj.get("size"),
            ))
        except (KeyError, TypeError, AttributeError) as exc:
            raise UnreadableMessage(f"S3 event record lacks field {exc}") from None
    return refs or None


# -- streaming -------------------------------------------------------------


class HashingReader(io.RawIOBase):
    """A raw binary stream over ``source`` that hashes (SHA-256) and counts what is read."""

    def __init__(self, source: Any):
        super().__init__()
        self._source = source
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.size += n
        return n

    def drain(self) -> None:
        """Read (and hash) whatever the parser left unread."""
        while data := self._source.read(_READ_CHUNK):
            self.sha256.update(data)
            self.size += len(data)


class BatchSender:
    """Sends message bodies with SendMessageBatch: <= 10 entries and < 256 KiB per call.

    A body over SQS's size limit is refused by ``add`` with ``MessageTooLarge``
    before anything is buffered or sent; that is the only error ``add`` raises on
    its own account. Anything else (``flush``'s SDK errors) is a failure to retry.

    An entry counts as sent only when the answer lists its Id under ``Successful``;
    every other entry (listed under ``Failed``, or missing from the answer) stays
    buffered and is retried alone, with exponential backoff; anything still unsent
    after ``attempts`` raises ``ProviderError``. An answer naming an Id that was
    not sent raises ``ProviderError`` at once. Entries leave the buffer only once
    accepted, so an exception never drops them.
    """

    def __init__(self, sqs: Any, queue_url: str, *, attempts: int = 6, backoff: float = 0.05,
                 sleep: Callable[[float], None] = time.sleep):
        self.sqs = sqs
        self.queue_url = queue_url
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep
        self._entries: list[dict[str, str]] = []
        self._bytes = 0
        self.sent = 0
        self.calls = 0

    @staticmethod
    def check(entry_id: str, body: str) -> int:
        """The body's size in bytes; ``MessageTooLarge`` if SQS would refuse it."""
        size = len(body.encode())
        if size > MAX_MESSAGE_BYTES:
            raise MessageTooLarge(f"message {entry_id} is {size} bytes, over SQS's {MAX_MESSAGE_BYTES}-byte limit")
        return size

    def add(self, entry_id: str, body: str) -> None:
        """Buffer one message (sending a full batch first). ``MessageTooLarge``: refused, nothing done."""
        size = self.check(entry_id, body)
        if len(self._entries) == MAX_BATCH_ENTRIES or self._bytes + size > MAX_MESSAGE_BYTES:
            self.flush()
        self._entries.append({"Id": entry_id, "MessageBody": body})
        self._bytes += size

    def flush(self) -> None:
        """Send every buffered entry; raises ``ProviderError`` (or the SDK's error) if that fails."""
        attempt = 0
        while self._entries:
            pending = self._entries
            self.calls += 1
            out = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=pending)
            sent_ids = {e["Id"] for e in pending}
            accepted = {s.get("Id") for s in out.get("Successful") or []}
            reasons = {f.get("Id"): f"{f.get('Code')} {f.get('Message', '')}".strip() for f in out.get("Failed") or []}
            unknown = sorted(str(i) for i in (accepted | reasons.keys()) - sent_ids)
            if unknown:
                raise ProviderError(f"SendMessageBatch answered for entries it was not sent ({', '.join(unknown)}); "
                                    f"sent {', '.join(e['Id'] for e in pending)}")
            self.sent += len(accepted)
            self._entries = [e for e in pending if e["Id"] not in accepted]
            if not self._entries:
                self._bytes = 0
                return
            self._bytes = sum(len(e["MessageBody"].encode()) for e in self._entries)
            attempt += 1
            if attempt >= self.attempts:
                detail = "; ".join(f"{e['Id']}: {reasons.get(e['Id'], 'missing from the answer')}"
                                   for e in self._entries[:5])
                raise ProviderError(f"{len(self._entries)} import message(s) not accepted by SQS after "
                                    f"{self.attempts} attempts ({detail})")
            self.sleep(min(self.backoff * 2 ** (attempt - 1), 2.0))


def load_signers(s3: Any, uri: str) -> tuple[x509.Certificate, ...]:
    """Every certificate in the signer files under ``s3://bucket/prefix/`` (``microchip.read_signer_file``).

    Objects whose names are not signer file names (``microchip.SIGNER_SUFFIXES``) are
    ignored with a warning naming them: the stack never uploads such a file.
    """
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise SettingsError(f"Microchip signers location must be s3://bucket/prefix/, got {uri!r}")
    prefix = parsed.path.lstrip("/")
    signers: list[x509.Certificate] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=parsed.netloc, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not microchip.is_signer_file(obj["Key"]):
                if not obj["Key"].endswith("/"):
                    logger.warning("not a Microchip signer file name; ignored",
                                   extra={"object": f"s3://{parsed.netloc}/{obj['Key']}",
                                          "accepted": list(microchip.SIGNER_SUFFIXES)})
                continue
            data = s3.get_object(Bucket=parsed.netloc, Key=obj["Key"])["Body"].read()
            try:
                signers.extend(microchip.read_signer_file(f"s3://{parsed.netloc}/{obj['Key']}", data))
            except microchip.SignerFileError as exc:
                raise SettingsError(f"Microchip signer {exc.reason}") from None
    if not signers:
        suffixes = "/".join(microchip.SIGNER_SUFFIXES)
        raise SettingsError(f"no Microchip signer certificates ({suffixes}) under {uri}")
    return tuple(signers)


# -- the provider ----------------------------------------------------------


class Provider:
    """The runtime of one vendor's provider function. Clients are created lazily unless injected."""

    def __init__(self, vendor: str, *, settings: FunctionSettings | None = None, s3: Any = None,
                 sqs: Any = None, dynamodb: Any = None, tuning: Tuning | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 window: Callable[[dict[str, Any]], int | None] | None = None,
                 wall_clock: Callable[[], float] = time.time):
        if vendor not in VENDORS:
            raise ValueError(f"unknown vendor {vendor!r}; known: {', '.join(sorted(VENDORS))}")
        self.vendor = vendor
        self.tuning = tuning or Tuning()
        self._settings = settings
        self._s3, self._sqs, self._dynamodb = s3, sqs, dynamodb
        self._audit: AuditTable | None = None
        self._signers: tuple[x509.Certificate, ...] | None = None
        self.sleep = sleep
        self.clock = clock
        #: epoch seconds: when a lease ends (``AuditTable.claim``).
        self.wall_clock = wall_clock
        #: the backpressure seam: entries a manifest (its summary) may enqueue now; None: no limit.
        self.window = window
        # A failed message is reported in batchItemFailures (retried by SQS, then its DLQ),
        # also when it is the whole batch: no Lambda error for an expected retry.
        self.processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    # -- lazily built dependencies ----------------------------------------

    @property
    def settings(self) -> FunctionSettings:
        if self._settings is None:
            self._settings = FunctionSettings.from_env()
        if self._settings.vendor and self._settings.vendor != self.vendor:
            raise SettingsError(f"THINGPRESS_VENDOR is {self._settings.vendor!r} but this is the "
                                f"{self.vendor!r} provider function")
        return self._settings

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = boto3.client("s3")
        return self._s3

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = boto3.client("sqs")
        return self._sqs

    @property
    def audit(self) -> AuditTable:
        if self._audit is None:
            if self._dynamodb is None:
                self._dynamodb = boto3.client("dynamodb")
            self._audit = AuditTable(self._dynamodb, self.settings.audit_table, self.settings.audit_retention_days,
                                     announcer=events.announcer(self.settings.event_bus))
        return self._audit

    @functools.cached_property
    def thing_names(self) -> ThingNameTemplate:
        """How each device's thing is named (THINGPRESS_THING_NAME_TEMPLATE, THINGPRESS_THING_PREFIX)."""
        try:
            return ThingNameTemplate(self.settings.thing_name_template, self.settings.thing_prefix)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    def options(self) -> ParseOptions:
        """Parse options from the settings; Microchip signers are loaded once per cold start."""
        signers: tuple[x509.Certificate, ...] = ()
        if self.vendor == "microchip":
            if self._signers is None:
                if not self.settings.microchip_signers:
                    raise SettingsError("THINGPRESS_MICROCHIP_SIGNERS is not set: cannot verify Microchip manifests")
                self._signers = load_signers(self.s3, self.settings.microchip_signers)
            signers = self._signers
        return ParseOptions(expired=self.settings.expired_certificates,
                            infineon_bundle=self.settings.infineon_bundle, microchip_signers=signers)

    # -- Lambda entry -----------------------------------------------------

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The Lambda handler: a partial batch response over the manifest queue messages."""
        metrics.add_dimension(name="vendor", value=self.vendor)
        # Every line names its invocation (Powertools' key): what an invocation did with a manifest,
        # from "manifest taken" to "manifest let go", can be told apart from another's.
        logger.append_keys(function_request_id=getattr(context, "aws_request_id", None))
        try:
            return process_partial_response(event=event, processor=self.processor, context=context,
                                            record_handler=lambda record: self._handle_logged(record, context))
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()
            else:  # nothing to publish (test event, redelivery): no empty EMF blob
                metrics.clear_metrics()

    def _handle_logged(self, record: SQSRecord, context: Any) -> list[RunResult]:
        try:
            return self.handle_record(record, context)
        except Exception:
            logger.exception("manifest queue message failed; SQS will redeliver it and the manifest "
                             "resumes from its checkpoint", extra={"message_id": record.message_id})
            raise

    def handle_record(self, record: SQSRecord, context: Any) -> list[RunResult]:
        """One manifest queue message. Raises only for failures worth a retry."""
        try:
            parsed = parse_queue_message(record.body)
        except UnreadableMessage as exc:
            # Not retried: it would never become readable. Kept in the audit trail.
            logger.error("unreadable manifest queue message", extra={"message_id": record.message_id,
                                                                     "reason": exc.reason})
            self.audit.record_unreadable(record.message_id, f"manifest queue message: {exc.reason}")
            return []
        if parsed is None:
            logger.info("nothing to do for this message (S3 test event or no created object)",
                        extra={"message_id": record.message_id})
            return []
        deadline = _Deadline(context, self.tuning.safety_margin_ms)
        if isinstance(parsed, Continuation):
            return [self.resume(parsed, deadline)]
        results: list[RunResult] = []
        for index, ref in enumerate(parsed):
            if index and deadline.low():
                results.append(self.defer(ref))
            else:
                results.append(self.process(ref, deadline))
        return results

    # -- one manifest ---------------------------------------------------------

    def process(self, ref: ObjectRef, deadline: _Deadline | None = None) -> RunResult:
        """Handle an S3 event's object: start (or find) its manifest and parse it."""
        mid = audit.manifest_id(self.vendor, ref.bucket, ref.key, ref.version)
        with _manifest_keys(mid):
            summary = self.audit.start_manifest(mid, vendor=self.vendor, bucket=ref.bucket, key=ref.key,
                                                version=ref.version_id, etag=ref.etag, size=ref.size,
                                                environment=self.settings.environment or None)
            if self._finished(mid, summary):
                logger.info("manifest already handled; nothing to do", extra={"state": summary["state"]})
                return RunResult(mid, "skipped")
            if summary["state"] == audit.RECEIVED:  # not yet started by an earlier delivery
                metrics.add_metric(name="ManifestsReceived", unit=MetricUnit.Count, value=1)
            return self._take(mid, ref, summary, Handle(), deadline or _Deadline(None, None))

    def resume(self, cont: Continuation, deadline: _Deadline | None = None) -> RunResult:
        """Handle a continuation message: carry on from the stored checkpoint."""
        if cont.vendor != self.vendor:
            logger.error("continuation for another vendor ignored", extra={"manifest_id": cont.manifest_id,
                                                                          "vendor": cont.vendor})
            return RunResult(cont.manifest_id, "skipped", reason=f"continuation is for vendor {cont.vendor!r}")
        expected = audit.manifest_id(self.vendor, cont.ref.bucket, cont.ref.key, cont.ref.version)
        if expected != cont.manifest_id:
            logger.error("continuation does not match its object; ignored",
                         extra={"manifest_id": cont.manifest_id, "object": cont.ref.uri})
            return RunResult(cont.manifest_id, "skipped", reason="manifest id does not match the object")
        with _manifest_keys(cont.manifest_id):
            summary = self.audit.get_summary(cont.manifest_id)
            if summary is None:
                logger.error("continuation for an unknown manifest ignored", extra={"object": cont.ref.uri})
                return RunResult(cont.manifest_id, "skipped", reason="unknown manifest")
            if self._finished(cont.manifest_id, summary):
                logger.info("manifest already handled; nothing to do", extra={"state": summary["state"]})
                return RunResult(cont.manifest_id, "skipped")
            ref = ObjectRef(cont.ref.bucket, cont.ref.key, cont.ref.version_id, cont.ref.etag, summary.get("size"))
            return self._take(cont.manifest_id, ref, summary, cont.handle, deadline or _Deadline(None, None))

    def _take(self, mid: str, ref: ObjectRef, summary: dict[str, Any], handle: Handle,
              deadline: _Deadline) -> RunResult:
        """Run the manifest if ``handle`` is its live handle and its lease is free (module docstring)."""
        if Handle.of(summary) != handle:
            return self._stale(mid, handle, summary)
        now = self.wall_clock()
        until = now + (deadline.at_start_ms if deadline.at_start_ms is not None else MAX_INVOCATION_MS) / 1000
        if not self.audit.claim(mid, handle, until=until, now=now):
            summary = self.audit.get_summary(mid) or summary
            if self._finished(mid, summary):
                return RunResult(mid, "skipped")
            if Handle.of(summary) != handle:
                return self._stale(mid, handle, summary)
            return self._busy(mid, ref, handle, summary)
        logger.info("manifest taken", extra={"object": ref.uri, "chain": handle.chain, "link": handle.link,
                                             "resume_after": int(summary.get("checkpoint") or 0)})
        outcome = "failed"
        try:
            result = self._run(mid, ref, summary, deadline)
            outcome = result.outcome
            return result
        except Exception:
            # Failing: give the lease back, so this message carries on when it comes back (a kill cannot;
            # then the lease ends at the deadline, before the visibility timeout brings the message back).
            self.audit.release(mid, handle, until=until)
            raise
        finally:
            logger.info("manifest let go", extra={"outcome": outcome})

    @staticmethod
    def _stale(mid: str, handle: Handle, summary: dict[str, Any]) -> RunResult:
        """A handle the manifest has left (module docstring, "One live chain"): acknowledged."""
        live = Handle.of(summary)
        logger.info("message is not the manifest's live handle; acknowledged, nothing done",
                    extra={"message_chain": handle.chain, "message_link": handle.link, "live_chain": live.chain,
                           "live_link": live.link})
        return RunResult(mid, "stale", reason=f"chain {handle.chain} link {handle.link} is stale: the manifest is "
                                              f"on chain {live.chain} link {live.link}")

    def _busy(self, mid: str, ref: ObjectRef, handle: Handle, summary: dict[str, Any]) -> RunResult:
        """Another invocation holds the lease on this very handle (a second delivery of its message).

        Whether it is alive cannot be known: the same handle is sent again, delayed until the
        lease ends, and this message acknowledged (module docstring, "One live chain").
        """
        delay = max(1, min(MAX_DELAY_SECONDS, math.ceil(float(summary.get("lease_until") or 0) - self.wall_clock()) + 1))
        self._send(Continuation(mid, self.vendor, ref, handle), delay)
        logger.info("another invocation holds this manifest; the same handle sent again after its lease",
                    extra={"chain": handle.chain, "link": handle.link, "delay_seconds": delay})
        return RunResult(mid, "busy")

    def defer(self, ref: ObjectRef) -> RunResult:
        """Start a manifest and leave it to a continuation (no time left in this invocation)."""
        mid = audit.manifest_id(self.vendor, ref.bucket, ref.key, ref.version)
        summary = self.audit.start_manifest(mid, vendor=self.vendor, bucket=ref.bucket, key=ref.key,
                                            version=ref.version_id, etag=ref.etag, size=ref.size,
                                            environment=self.settings.environment or None)
        if self._finished(mid, summary):
            return RunResult(mid, "skipped")
        if Handle.of(summary) != Handle():
            return self._stale(mid, Handle(), summary)
        if not self._continue(mid, ref, Handle()):
            return RunResult(mid, "behind")
        return RunResult(mid, "deferred")

    def _finished(self, mid: str, summary: dict[str, Any]) -> bool:
        """Parsed, complete or refused: nothing left to parse.

        A parsed manifest that is not COMPLETE gets its completion check here: the
        invocation that committed the last checkpoint may have died before its own
        ``try_complete``, so whoever finds it parsed checks again (a no-op while
        certificates are outstanding).
        """
        if not _finished(summary):
            return False
        if summary.get("state") not in (audit.COMPLETE, audit.REFUSED):
            self.audit.try_complete(mid)
        return True

    def refuse(self, mid: str, ref: ObjectRef, reason: str) -> RunResult:
        """Refuse a whole file for good: audit REFUSED with the reason, error log, no retry."""
        full = f"{ref.uri}: {reason}"
        logger.error("manifest refused", extra={"object": ref.uri, "reason": full})
        self.audit.refuse_manifest(mid, full)
        metrics.add_metric(name="ManifestsRefused", unit=MetricUnit.Count, value=1)
        return RunResult(mid, "refused", reason=full)

    def _run(self, mid: str, ref: ObjectRef, summary: dict[str, Any], deadline: _Deadline) -> RunResult:
        expected = VENDORS[self.vendor].suffix
        if not ref.key.lower().endswith(expected):
            other = vendor_for_key(ref.key)
            hint = f" (that suffix is the {other} provider's)" if other else ""
            return self.refuse(mid, ref, f"not a {self.vendor} manifest: the {self.vendor} provider expects a "
                                         f"'{expected}' object{hint}")
        if ref.size is not None and ref.size > MAX_MANIFEST_BYTES:
            return self.refuse(mid, ref, f"the object is {ref.size:,} bytes, more than the provider's limit of "
                                         f"{MAX_MANIFEST_BYTES:,} bytes (10 GiB): split the manifest")
        if not self.settings.import_queue_url:
            raise SettingsError("THINGPRESS_IMPORT_QUEUE_URL is not set: nowhere to send import messages")
        return self._stream(mid, ref, summary, self.options(), deadline)

    def _get(self, ref: ObjectRef, offset: int = 0) -> Any:
        """The object's body from byte ``offset`` on (a ranged GET), streaming."""
        kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            kwargs["VersionId"] = ref.version_id
        elif ref.etag:
            kwargs["IfMatch"] = ref.etag
        if offset:
            if ref.size is not None and offset >= ref.size:
                return io.BytesIO(b"")  # the cursor stands at the end: S3 would answer 416
            kwargs["Range"] = f"bytes={offset}-"
        try:
            return self.s3.get_object(**kwargs)["Body"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "InvalidRange":  # nothing after the cursor
                return io.BytesIO(b"")
            if code in ("NoSuchKey", "NoSuchVersion", "404"):
                raise _Gone("the object no longer exists") from None
            # Not transient either: S3 answers AccessDenied for a missing key when the reader may not list the bucket.
            if code in ("AccessDenied", "403"):
                raise _Gone(f"access denied reading the object ({code}): it is missing, or the provider may not "
                            "read it") from None
            if code in ("PreconditionFailed", "412"):
                raise _Gone("the object was replaced before it could be read (ETag changed); "
                            "the new version has its own event") from None
            raise

    def _stream(self, mid: str, ref: ObjectRef, summary: dict[str, Any], options: ParseOptions,
                deadline: _Deadline) -> RunResult:
        """Run one chunk of the manifest through the core (``provider_core.run_chunk``)."""
        tuning = self.tuning
        checkpoint = int(summary.get("checkpoint") or 0)
        cursor = Cursor.from_summary(summary)
        vendor = VENDORS[self.vendor]
        # Infineon: the reel's selected bundle, extracted once into a staged object read like a line format.
        read = vendor.read_staged if vendor.stage is not None else vendor.read
        # From the cursor when there is one; else from the top (a new manifest, a format that
        # cannot be entered part-way, or an old checkpoint without a cursor), skipping to the checkpoint.
        offset = cursor.offset if read is not None and cursor is not None and checkpoint else 0
        sender = BatchSender(self.sqs, self.settings.import_queue_url, attempts=tuning.send_attempts,
                             backoff=tuning.send_backoff, sleep=self.sleep)
        # Backpressure (thingpress.backpressure): how many certificates this run may enqueue.
        pressure = None if self.window is not None else self.backpressure(mid)
        ports = _AwsPorts(self, mid, summary, sender, deadline, pressure)
        # Validity is judged at the manifest's start, on every run: a replay after a certificate's
        # notAfter must refuse exactly what the first run refused (and send what it sent).
        options = dataclasses.replace(options, now=_started(summary))
        pace = Pace(checkpoint_every=tuning.checkpoint_every, checkpoint_seconds=tuning.checkpoint_seconds,
                    max_entries=tuning.max_entries_per_invocation or self.settings.provider_max_entries,
                    claim_batch=tuning.claim_batch)
        totals = Progress(entries=int(summary.get("entries") or 0), duplicates=int(summary.get("duplicates") or 0),
                          queued=int(summary.get("queued") or 0), rejected=int(summary.get("rejected") or 0),
                          no_certificates=int(summary.get("no_certificates") or 0))
        try:
            source, staged_sha = (self._staged(mid, ref, summary, options) if vendor.stage is not None
                                  else (ref, None))
            body = self._get(source, offset)
        except (_Gone, ManifestError, OSError) as exc:
            return self.refuse(mid, ref, _refusal_reason(exc))
        with body:
            reader = HashingReader(body)
            # Buffered, not seekable: parsers stream it.
            stream = io.BufferedReader(reader, buffer_size=_READ_CHUNK)
            if offset:
                entries: Iterable[tuple[Any, Cursor | None]] = read(stream, options, cursor)  # type: ignore[misc]
            elif read is not None:
                entries = read(stream, options, None)
            else:
                entries = ((entry, None) for entry in parse_manifest(self.vendor, stream, options))
            ports.finish = ((lambda: staged_sha) if staged_sha is not None
                            else (lambda: self._digest(ref, reader, whole=not offset)))
            try:
                chunk = run_chunk(entries, start=checkpoint, ports=ports, pace=pace, summary=summary, totals=totals,
                                  skip_to=0 if offset else checkpoint,
                                  reclaim=checkpoint > 0 and "cursor" not in summary, clock=self.clock)
            except (ManifestError, OSError) as exc:
                return self.refuse(mid, ref, _refusal_reason(exc))
        result = RunResult(mid, chunk.outcome, entries=chunk.entries, queued=chunk.queued,
                           duplicates=chunk.duplicates, rejected=chunk.rejected)
        if chunk.outcome == "behind":
            return self._behind(result)
        if chunk.outcome == "chunked":
            if not self._continue(mid, ref, Handle.of(summary)):
                return self._behind(result)
            logger.info("manifest chunk done; continuation sent",
                        extra={"checkpoint": chunk.position, "entries_this_invocation": chunk.entries,
                               "remaining_ms": deadline.remaining()})
        elif chunk.outcome == "paused":
            return self._pause(result, ref, summary, pressure, deadline, checkpoint=chunk.position)
        else:
            result.reason = chunk.note
            if chunk.note:
                logger.warning("manifest has nothing to import", extra={"object": ref.uri, "note": chunk.note})
            logger.info("manifest parsed", extra={"entries": result.entries, "queued": result.queued,
                                                  "duplicates": result.duplicates, "rejected": result.rejected,
                                                  "sha256": ports.sha256})
        return result

    def _staged(self, mid: str, ref: ObjectRef, summary: dict[str, Any],
                options: ParseOptions) -> tuple[ObjectRef, str]:
        """The staged object of a reel and the reel's SHA-256; extracts and stages the reel when
        it is not staged yet, or its staged object expired (the lifecycle rule on ``STAGING_PREFIX``)."""
        staged = ObjectRef(ref.bucket, staging_key(mid))
        if summary.get("staged") and summary.get("reel_sha256"):
            try:
                self.s3.head_object(Bucket=staged.bucket, Key=staged.key)
                return ObjectRef(staged.bucket, staged.key, size=summary.get("staged_size")), summary["reel_sha256"]
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in _STAGED_GONE:
                    raise
                logger.info("staged reel expired; extracting it again", extra={"staged": staged.key, "answer": code})
        stage = VENDORS[self.vendor].stage
        assert stage is not None
        with self._get(ref) as body, tempfile.SpooledTemporaryFile(max_size=_STAGE_IN_MEMORY) as spool:
            reader = HashingReader(body)
            count = stage(io.BufferedReader(reader, buffer_size=_READ_CHUNK), options, spool)
            reader.drain()
            size = spool.tell()
            spool.seek(0)
            # Same bucket, so the bucket's default encryption (the stack's KMS key) applies.
            self.s3.put_object(Bucket=staged.bucket, Key=staged.key, Body=spool, ContentLength=size)
        sha256 = reader.sha256.hexdigest()
        self.audit.set_staged(mid, staged.key, size=size, sha256=sha256)
        logger.info("reel staged", extra={"staged": staged.key, "files": count, "bytes": size})
        return ObjectRef(staged.bucket, staged.key, size=size), sha256

    def _digest(self, ref: ObjectRef, reader: HashingReader, *, whole: bool) -> str:
        """The SHA-256 of the whole object: the reader's, if it read from the top; else read again."""
        if whole:
            reader.drain()
            return reader.sha256.hexdigest()
        # A chunk that started at a cursor saw only the tail: hash the object once more, streaming.
        with self._get(ref, 0) as body:
            again = HashingReader(body)
            again.drain()
            return again.sha256.hexdigest()

    def backpressure(self, mid: str) -> Backpressure:
        """The window and fair share for one manifest in this invocation (other manifests read once)."""
        window = window_for(self.settings.import_window_minutes, self.settings.iot_tps)
        return Backpressure(mid, window, self.audit.manifests_in_flight)

    def _pause(self, result: RunResult, ref: ObjectRef, summary: dict[str, Any], pressure: Backpressure | None,
               deadline: _Deadline, *, checkpoint: int) -> RunResult:
        """The import window is full (progress committed up to ``checkpoint``): pause the manifest.

        The pause is noted on the summary (``AuditTable.note_paused``: the watchdog sees
        the manifest alive) and a continuation is sent, delayed by
        ``Backpressure.pause_seconds`` (counting what this run queued; ``Tuning.pause_seconds``
        with an explicit ``window``), at most the invocation's time at start (its timeout),
        so a paused manifest is resumed well before the watchdog's stall threshold (two
        timeouts). If the note finds the checkpoint or the chain moved on, another invocation is
        ahead: ``_behind``.
        """
        if pressure is None:
            delay = self.tuning.pause_seconds
        else:
            own = {**summary, "outstanding": int(summary.get("outstanding") or 0) + result.queued}
            longest = MAX_PAUSE_SECONDS if deadline.at_start_ms is None else max(1, deadline.at_start_ms // 1000)
            delay = pressure.pause_seconds(own, longest)
        handle = Handle.of(summary)
        if (not self.audit.note_paused(result.manifest_id, checkpoint=checkpoint, seconds=delay, handle=handle)
                or not self._continue(result.manifest_id, ref, handle, delay=delay)):
            return self._behind(result)
        logger.info("import window full; manifest paused, delayed continuation sent",
                    extra={"queued_this_invocation": result.queued, "pause_seconds": delay, "checkpoint": checkpoint})
        result.outcome = "paused"
        return result

    def _behind(self, result: RunResult) -> RunResult:
        """Another invocation committed first (on this chain, or a newer one): acknowledge and stop.

        No message is sent: the invocation ahead carries the manifest on, and if it dies its
        own message comes back, or the watchdog starts a new chain (module docstring).
        """
        result.outcome = "behind"
        summary = self.audit.get_summary(result.manifest_id)
        if summary is not None:
            self._finished(result.manifest_id, summary)  # the completion check, if it is parsed
        logger.info("another handle took this manifest over; stopping",
                    extra={"checkpoint": summary and summary.get("checkpoint")})
        return result

    def _continue(self, mid: str, ref: ObjectRef, handle: Handle, *, delay: int = 0) -> bool:
        """Hand the manifest over from ``handle`` to a new link of its chain and send that continuation.

        False (nothing sent) if the summary is no longer on ``handle``: another took over.
        """
        nxt = Handle(handle.chain, uuid.uuid4().hex)
        if not self.audit.hand_over(mid, handle, nxt.link):  # type: ignore[arg-type]
            return False
        self._send(Continuation(mid, self.vendor, ref, nxt), delay)
        return True

    def _send(self, continuation: Continuation, delay: int = 0) -> None:
        url = self.settings.manifest_queue_url
        if not url:
            # Without our own queue the only way on is SQS redelivery: fail the message.
            raise ProviderError("THINGPRESS_MANIFEST_QUEUE_URL is not set: cannot hand the manifest "
                                "over to a continuation; it resumes from its checkpoint on redelivery")
        body = continuation.encode()
        if delay:
            self.sqs.send_message(QueueUrl=url, MessageBody=body, DelaySeconds=delay)
        else:
            self.sqs.send_message(QueueUrl=url, MessageBody=body)


# -- the core's ports, on AWS ------------------------------------------------


class _AwsPorts:
    """``provider_core.Ports`` for one chunk: claims and checkpoints in the audit table
    (``AuditTable``), sends with ``BatchSender``, the deadline from the Lambda context, and
    the backpressure seam ``room_for`` (the provider's ``window``; None: no limit)."""

    def __init__(self, provider: Provider, mid: str, summary: dict[str, Any], sender: BatchSender,
                 deadline: _Deadline, pressure: Backpressure | None = None):
        self.provider = provider
        self.pressure = pressure
        self.mid = mid
        self.summary = summary
        self.sender = sender
        self.deadline = deadline
        self.finish: Callable[[], str] = lambda: ""
        self.sha256: str | None = None
        self._queued_at = summary["started_at"]
        #: position -> the import message ``prepare`` made (at most one claim batch at a time).
        self._prepared: dict[int, str] = {}

    def room_for(self, summary: dict[str, Any]) -> int | None:
        if self.pressure is not None:
            return self.pressure.room_for(summary)
        window = self.provider.window
        return None if window is None else window(summary)

    def claim(self, claims: list[tuple[str, int]]) -> dict[int, int]:
        try:
            return self.provider.audit.claim_certificates(self.mid, claims)
        except ClaimsUnsettled as exc:
            raise ProviderError(str(exc)) from None

    def prepare(self, entry: Certificate) -> str | None:
        vendor = self.provider.vendor
        try:
            # The thing's name: the one place (thingpress.thing_names) the template is applied.
            thing_name = self.provider.thing_names.render(vendor=vendor, name=entry.thing_name,
                                                          fingerprint=entry.fingerprint,
                                                          certificate_pem=entry.certificate_pem)
            body = ImportMessage(manifest_id=self.mid, vendor=vendor, position=entry.position,
                                 thing_name=thing_name, fingerprint=entry.fingerprint,
                                 certificate_pem=entry.certificate_pem, queued_at=self._queued_at,
                                 attributes=device_attributes(vendor, entry.details) or None).encode()
            BatchSender.check(str(entry.position), body)
        except (MessageTooLarge, ThingNameError) as exc:  # refused before it was claimed, buffered or sent
            return exc.reason
        self._prepared[entry.position] = body
        return None

    def send(self, entry: Certificate) -> None:
        self.sender.add(str(entry.position), self._prepared.pop(entry.position))

    def commit(self, commit: Commit) -> bool:
        audit_table = self.provider.audit
        self.sender.flush()
        if commit.stretch.refusals:
            audit_table.put_refusals(self.mid, self.provider.vendor, commit.stretch.refusals)
        progress = commit.stretch.progress()
        final: dict[str, Any] = {}
        if commit.final:
            self.sha256 = self.finish()
            final = {"state": audit.QUEUED, "parse_done": True, "sha256": self.sha256, "note": commit.note}
        cursor = commit.cursor.as_item() if commit.cursor is not None else NO_CURSOR
        if not audit_table.checkpoint(self.mid, commit.position, progress, previous=commit.previous,
                                      cursor=cursor, handle=Handle.of(self.summary), **final):
            return False
        _emit(progress)
        return True

    def time_is_up(self) -> bool:
        return self.deadline.low()


#: the ``cursor`` a checkpoint stores when its entries came without one (a vendor with neither
#: ``read`` nor ``read_staged``): the next chunk re-reads from the top and skips to the
#: checkpoint, without claiming again (its claims are stored).
NO_CURSOR: dict[str, Any] = {"offset": None, "line": 0}


# -- helpers -----------------------------------------------------------------


class _Gone(ThingpressError):
    """The object named by the event cannot be read any more."""


class _Deadline:
    """Knows when an invocation must hand over: remaining time below a safety margin."""

    def __init__(self, context: Any, margin_ms: int | None):
        self._context = context if context is not None and hasattr(context, "get_remaining_time_in_millis") else None
        #: the invocation's time left when it started (None without a context).
        self.at_start_ms: int | None = None
        if self._context is None:
            self.margin = 0
            return
        self.at_start_ms = self._context.get_remaining_time_in_millis()
        self.margin = margin_ms if margin_ms is not None else min(30_000, self.at_start_ms // 6)

    def remaining(self) -> int | None:
        return self._context.get_remaining_time_in_millis() if self._context else None

    def low(self) -> bool:
        return self._context is not None and self._context.get_remaining_time_in_millis() < self.margin


class _manifest_keys:
    """Adds ``manifest_id`` to every log line while a manifest is handled."""

    def __init__(self, mid: str):
        self.mid = mid

    def __enter__(self) -> None:
        logger.append_keys(manifest_id=self.mid)

    def __exit__(self, *exc: object) -> None:
        logger.remove_keys(["manifest_id"])


def staging_key(mid: str) -> str:
    """Where a manifest's staged object lives (the stack expires ``STAGING_PREFIX`` by a lifecycle rule)."""
    return f"{STAGING_PREFIX}{mid}.staged"


def _refusal_reason(exc: Exception) -> str:
    """Why a file is refused for good: the object is gone, not a manifest, or /tmp is full."""
    if isinstance(exc, ManifestError):
        return exc.reason
    if isinstance(exc, OSError) and not isinstance(exc, _Gone):
        if exc.errno != errno.ENOSPC:
            raise exc
        # A retry meets the same disk: refused, with what to change.
        return ("no space left in the function's /tmp (its ephemeral storage) while spooling the manifest: "
                "give the function more ephemeral storage or lower the archive limits")
    return str(exc)


def _started(summary: dict[str, Any]) -> datetime:
    """When the manifest was received: the instant its certificates' validity is judged at."""
    return datetime.strptime(summary["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _finished(summary: dict[str, Any]) -> bool:
    return bool(summary.get("parse_done")) or summary.get("state") in (audit.COMPLETE, audit.REFUSED)


def _emit(progress: Progress) -> None:
    for name, value in (("CertificatesQueued", progress.queued), ("EntriesRefused", progress.rejected),
                        ("Duplicates", progress.duplicates)):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
