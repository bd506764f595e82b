"""The provider function's runtime: ``Provider``, the Lambda entry of every provider function, and
what it does with one manifest (``process`` an S3 event's object, ``resume`` a continuation,
``defer``, ``refuse``) by running one chunk of it through the pure core (``_stream``); with its
pacing (``Tuning``). The chain's hand-overs and the backpressure pauses are mixed in
(``thingpress.provider.chain``, ``thingpress.provider.pauses``); see ``thingpress.provider``.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from cryptography import x509

from thingpress import events
from thingpress.audit import states
from thingpress.audit.chain import Handle
from thingpress.audit.claims import CLAIMS_LIFETIME, PARSING_TIME
from thingpress.audit.keys import manifest_id, parse_stamp
from thingpress.audit.summaries import Progress
from thingpress.audit.table import AuditTable
from thingpress.cursor import Cursor
from thingpress.provider.chain import ChainHandling
from thingpress.provider.core import Pace, run_chunk
from thingpress.provider.deadline import Deadline
from thingpress.provider.failures import Gone, refusal_reason
from thingpress.provider.pauses import Pausing
from thingpress.provider.ports import AwsPorts
from thingpress.provider.queue_messages import Continuation, ObjectRef, UnreadableMessage, parse_queue_message
from thingpress.provider.reading import MAX_MANIFEST_BYTES, READ_CHUNK, HashingReader, digest, open_object
from thingpress.provider.results import RunResult
from thingpress.provider.sending import BatchSender
from thingpress.provider.signers import load_signers
from thingpress.provider.staging import stage_reel
from thingpress.provider.telemetry import logger, metrics
from thingpress.records import ManifestError
from thingpress.settings import FunctionSettings, SettingsError
from thingpress.thing_names import ThingNameTemplate
from thingpress.vendors import VENDORS, ParseOptions, parse_manifest, vendor_for_key


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


class Provider(ChainHandling, Pausing):
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
        deadline = Deadline(context, self.tuning.safety_margin_ms)
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

    def process(self, ref: ObjectRef, deadline: Deadline | None = None) -> RunResult:
        """Handle an S3 event's object: start (or find) its manifest and parse it."""
        mid = manifest_id(self.vendor, ref.bucket, ref.key, ref.version)
        with _manifest_keys(mid):
            summary = self.audit.start_manifest(mid, vendor=self.vendor, bucket=ref.bucket, key=ref.key,
                                                version=ref.version_id, etag=ref.etag, size=ref.size,
                                                environment=self.settings.environment or None)
            if self._finished(mid, summary):
                logger.info("manifest already handled; nothing to do", extra={"state": summary["state"]})
                return RunResult(mid, "skipped")
            if summary["state"] == states.RECEIVED:  # not yet started by an earlier delivery
                metrics.add_metric(name="ManifestsReceived", unit=MetricUnit.Count, value=1)
            return self._take(mid, ref, summary, Handle(), deadline or Deadline(None, None))

    def resume(self, cont: Continuation, deadline: Deadline | None = None) -> RunResult:
        """Handle a continuation message: carry on from the stored checkpoint."""
        if cont.vendor != self.vendor:
            logger.error("continuation for another vendor ignored", extra={"manifest_id": cont.manifest_id,
                                                                          "vendor": cont.vendor})
            return RunResult(cont.manifest_id, "skipped", reason=f"continuation is for vendor {cont.vendor!r}")
        expected = manifest_id(self.vendor, cont.ref.bucket, cont.ref.key, cont.ref.version)
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
            return self._take(cont.manifest_id, ref, summary, cont.handle, deadline or Deadline(None, None))

    def defer(self, ref: ObjectRef) -> RunResult:
        """Start a manifest and leave it to a continuation (no time left in this invocation)."""
        mid = manifest_id(self.vendor, ref.bucket, ref.key, ref.version)
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
        if summary.get("state") not in (states.COMPLETE, states.REFUSED):
            self.audit.try_complete(mid)
        return True

    def refuse(self, mid: str, ref: ObjectRef, reason: str) -> RunResult:
        """Refuse a whole file for good: audit REFUSED with the reason, error log, no retry."""
        full = f"{ref.uri}: {reason}"
        logger.error("manifest refused", extra={"object": ref.uri, "reason": full})
        self.audit.refuse_manifest(mid, full)
        metrics.add_metric(name="ManifestsRefused", unit=MetricUnit.Count, value=1)
        return RunResult(mid, "refused", reason=full)

    def _run(self, mid: str, ref: ObjectRef, summary: dict[str, Any], deadline: Deadline) -> RunResult:
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
        if datetime.now(UTC) - _started(summary) > PARSING_TIME:
            return self.refuse(mid, ref, _overdue(summary))
        return self._stream(mid, ref, summary, self.options(), deadline)

    def _stream(self, mid: str, ref: ObjectRef, summary: dict[str, Any], options: ParseOptions,
                deadline: Deadline) -> RunResult:
        """Run one chunk of the manifest through the core (``thingpress.provider.core.run_chunk``)."""
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
        started = _started(summary)
        ports = AwsPorts(self, mid, summary, sender, deadline, pressure, started=started)
        # Validity is judged at the manifest's start, on every run: a replay after a certificate's
        # notAfter must refuse exactly what the first run refused (and send what it sent).
        options = dataclasses.replace(options, now=started)
        pace = Pace(checkpoint_every=tuning.checkpoint_every, checkpoint_seconds=tuning.checkpoint_seconds,
                    max_entries=tuning.max_entries_per_invocation or self.settings.provider_max_entries,
                    claim_batch=tuning.claim_batch)
        totals = Progress(entries=int(summary.get("entries") or 0), duplicates=int(summary.get("duplicates") or 0),
                          queued=int(summary.get("queued") or 0), rejected=int(summary.get("rejected") or 0),
                          no_certificates=int(summary.get("no_certificates") or 0))
        try:
            source, staged_sha = (stage_reel(self.s3, self.audit, self.vendor, mid, ref, summary, options)
                                  if vendor.stage is not None else (ref, None))
            body = open_object(self.s3, source, offset)
        except (Gone, ManifestError, OSError) as exc:
            return self.refuse(mid, ref, refusal_reason(exc))
        with body:
            reader = HashingReader(body)
            # Buffered, not seekable: parsers stream it.
            stream = io.BufferedReader(reader, buffer_size=READ_CHUNK)
            if offset:
                entries: Iterable[tuple[Any, Cursor | None]] = read(stream, options, cursor)  # type: ignore[misc]
            elif read is not None:
                entries = read(stream, options, None)
            else:
                entries = ((entry, None) for entry in parse_manifest(self.vendor, stream, options))
            ports.finish = ((lambda: staged_sha) if staged_sha is not None
                            else (lambda: digest(self.s3, ref, reader, whole=not offset)))
            try:
                chunk = run_chunk(entries, start=checkpoint, ports=ports, pace=pace, summary=summary, totals=totals,
                                  skip_to=0 if offset else checkpoint,
                                  reclaim=checkpoint > 0 and "cursor" not in summary, clock=self.clock)
            except (ManifestError, OSError) as exc:
                return self.refuse(mid, ref, refusal_reason(exc))
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


class _manifest_keys:
    """Adds ``manifest_id`` to every log line while a manifest is handled."""

    def __init__(self, mid: str):
        self.mid = mid

    def __enter__(self) -> None:
        logger.append_keys(manifest_id=self.mid)

    def __exit__(self, *exc: object) -> None:
        logger.remove_keys(["manifest_id"])


def _started(summary: dict[str, Any]) -> datetime:
    """When the manifest was received: the instant its certificates' validity is judged at."""
    return parse_stamp(summary["started_at"])


def _overdue(summary: dict[str, Any]) -> str:
    """Why a manifest still parsing ``PARSING_TIME`` after its start is parsed no further."""
    rest = int(summary.get("checkpoint") or 0) + 1
    return (f"parsing did not finish within {PARSING_TIME.days} days of the manifest's start "
            f"({summary['started_at']}): its certificate claims (the duplicate detection) expire "
            f"{CLAIMS_LIFETIME.days} days after it, so the entries from position {rest} on are not imported. Upload "
            "the manifest again (a new object version is a new manifest; its certificates imported already are "
            "found ALREADY_PRESENT)")


def _finished(summary: dict[str, Any]) -> bool:
    return bool(summary.get("parse_done")) or summary.get("state") in (states.COMPLETE, states.REFUSED)
