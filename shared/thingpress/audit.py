"""The audit table: every manifest and every certificate ends in one known state.

One DynamoDB table (on-demand), keys ``pk``/``sk`` (strings):

==============================  =====================  ==========================================
row                             pk                     sk
==============================  =====================  ==========================================
manifest summary                ``M#<manifest_id>``    ``#SUMMARY``
summary shard (importer counts) ``M#<manifest_id>``    ``#SHARD#<nn>``
certificate outcome             ``M#<manifest_id>``    ``C#<fingerprint>``
entry refused by the provider   ``M#<manifest_id>``    ``R#<position, 9 digits>``
unreadable import message       ``M#_unreadable``      ``X#<SQS message id>``
certificate claim (provider)    ``D#<manifest_id>``    ``<fingerprint>``
manifest start (backpressure)   ``S#STARTS``           ``<started_at>#<manifest_id>``
==============================  =====================  ==========================================

A certificate claim records the first position of a certificate in its manifest
(``claim_certificates``): the provider's duplicate detection, flat in memory however
long the manifest. Claims live in a partition of their own, so a manifest's entry
rows (``iter_entries``) are unchanged by them; they expire with the retention.

A manifest start is noted in one partition for all manifests (``start_manifest``), so
the providers' backpressure can read every manifest started lately *consistently*
(``manifests_in_flight``): the ``by_state`` index is eventually consistent and lists a
new summary only a moment after it is written (``thingpress.backpressure``, "What the
bound assumes"). A start row holds no index attribute and expires after a day.

Global secondary indexes (projection ALL):

* ``by_thing``:  hash ``thing_name``, range ``updated_at`` -- "what happened to thing X?"
* ``by_status``: hash ``status``, range ``updated_at`` -- "every FAILED certificate".
* ``by_state``:  hash ``state``, range ``updated_at`` -- "every manifest still PARSING
  that has made no progress since T" (the watchdog).

Entry rows carry ``status`` (one of ``STATUSES``); summary rows carry ``state``
instead (``MANIFEST_STATES``), so the status index holds certificates only and the
state index manifest summaries only.
Every row has ``expires_at`` (epoch seconds, the table's TTL attribute).

A summary's ``updated_at`` is its last progress: every provider checkpoint and
every importer outcome transaction sets it, and so does a provider pausing the
manifest for backpressure (``note_paused``: alive, waiting for room in the import
window) (the watchdog reads it; marking a manifest STALLED does not move it).

No hot item: the importer counts on shards
-------------------------------------------
DynamoDB refuses a write to an item that an ongoing transaction holds
(``TransactionConflictException``; a transaction meeting another is cancelled with
reason ``TransactionConflict``: developer guide, "Amazon DynamoDB Transactions: How it
works", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling),
and botocore retries neither. If every importer outcome transaction moved the one
summary item, that item would be the table's hot spot: at importer concurrency 20,
about twenty 20-30 ms transactions a second on one manifest keep it held about half
the time, and the provider's checkpoints and pauses would meet it too. So the
importer never writes the summary. Its outcome transaction moves the counters
(``SHARDED_COUNTERS``) of one of ``SUMMARY_SHARDS`` shard items, drawn at random on
every attempt, and the summary keeps what one writer at a time owns (the provider's
checkpoint, the pause note, the chain, the state). A manifest's summary *as read*
(:meth:`AuditTable.get_summary`, :func:`merged`) is the summary item plus the sum of
its shards, in one strongly consistent Query (the shards' keys sort just before
``#SUMMARY``). With 16 shards a transaction meets another on its shard about
sixteen times less often; the ones that still meet are retried.

Every write to a shared item (summary, shard, claim, outcome) goes through
:meth:`AuditTable._retrying`: a conflict is retried with capped exponential backoff
and full jitter, up to ``CONFLICT_ATTEMPTS`` attempts (each retried conflict is
counted in ``AuditTable.conflicts``); any other error passes through at once.
Retrying is safe because a conflicting request is refused whole: nothing of it was
applied.

Counting, exactly once
----------------------
The provider commits progress with ``checkpoint``: one conditional UpdateItem that
moves ``checkpoint`` forward and ADDs what was parsed since the last one
(``entries``, ``duplicates``, ``queued``, ``rejected``, and ``no_certificates``
when there are any) and adds ``queued`` to ``outstanding``; with it goes the
``cursor`` where the next chunk starts reading (``thingpress.cursor``). The importer records an outcome with ``record_outcome``: a
transaction that puts the certificate row only if it does not exist and ADDs 1 to
the outcome's counter and -1 to ``outstanding``, on a shard. A redelivered message finds its
row and changes nothing. The manifest is ``COMPLETE`` once the provider has
finished parsing (``parse_done``) and ``outstanding`` (summary plus shards) is 0; then

    imported + already_present + rejected + failed + duplicates == entries

where ``entries`` counts every entry of the file and ``duplicates`` the entries
that repeat a certificate already seen earlier in the same manifest (imported once).
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from thingpress import events
from thingpress.events import CompletionEvents

IMPORTED = "IMPORTED"
ALREADY_PRESENT = "ALREADY_PRESENT"
REJECTED = "REJECTED"
FAILED = "FAILED"
STATUSES = (IMPORTED, ALREADY_PRESENT, REJECTED, FAILED)
#: the summary counter each terminal status adds to.
COUNTER = {IMPORTED: "imported", ALREADY_PRESENT: "already_present", REJECTED: "rejected", FAILED: "failed"}

#: a certificate row after ``thingpress rollback``/``teardown`` undid it (``previous_status``
#: keeps the import outcome); also the summary state of a rolled-back manifest. Not an
#: import outcome: the summary counters above keep what the import did.
ROLLED_BACK = "ROLLED_BACK"
#: rollback modes, weakest first: a row rolled back with one mode is done for it and every weaker one.
ROLLBACK_MODES = ("deactivate", "delete")

#: certificate rows per outcome transaction (DynamoDB allows 100 items; one is the summary update).
MAX_TRANSACTION_ROWS = 99
#: certificate claims per transaction (DynamoDB's limit).
MAX_CLAIMS_PER_TRANSACTION = 100
#: transactions a batch of claims may take before giving up (each one settles at least one claim
#: unless DynamoDB cancels it for a conflict or throttling).
CLAIM_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """A certificate's terminal outcome, to be written by :meth:`AuditTable.record_outcomes`."""

    manifest_id: str
    fingerprint: str
    status: str
    vendor: str
    position: int
    thing_name: str | None
    reason: str | None = None
    certificate_id: str | None = None
    attempts: int | None = None
    #: the environment whose importer wrote the row, and what its IoT calls created
    #: (see "Ownership" in thingpress.importer); None when no IoT call answered.
    environment: str | None = None
    certificate_registered: bool | None = None
    thing_created: bool | None = None


#: manifest states, in order; REFUSED is terminal for a file refused as a whole.
RECEIVED, PARSING, QUEUED, COMPLETE, REFUSED = "RECEIVED", "PARSING", "QUEUED", "COMPLETE", "REFUSED"
#: set by the watchdog: parsed, but outcomes are missing and no import message is left to
#: bring them. Not terminal: a late outcome that makes the counters add up completes it.
STALLED = "STALLED"
MANIFEST_STATES = (RECEIVED, PARSING, QUEUED, COMPLETE, REFUSED, STALLED)
#: states of a manifest still in progress (the watchdog looks at these only).
UNFINISHED_STATES = (RECEIVED, PARSING, QUEUED)
#: the summary counters that add up to ``entries`` once every entry has its outcome.
OUTCOME_COUNTERS = ("imported", "already_present", "rejected", "failed", "duplicates")

SUMMARY_SK = "#SUMMARY"
#: shard items of a summary: ``#SHARD#00`` ... (they sort before ``SUMMARY_SK``, after nothing else).
SHARD_PREFIX = "#SHARD#"
#: shard items per manifest (module docstring, "No hot item").
SUMMARY_SHARDS = 16
#: the summary counters the importer moves, on a shard; a summary as read adds the shards to them.
SHARDED_COUNTERS = ("imported", "already_present", "rejected", "failed", "outstanding")
#: attempts of a write that DynamoDB refuses for a transaction conflict; the backoff before
#: attempt n+1 is uniform in [0, min(cap, base * 2**n)] seconds ("full jitter").
CONFLICT_ATTEMPTS = 10
CONFLICT_BACKOFF_SECONDS = 0.025
CONFLICT_BACKOFF_CAP_SECONDS = 1.0
UNREADABLE_MANIFEST = "_unreadable"
#: the partition of manifest starts (module docstring); sort key ``<started_at>#<manifest_id>``.
STARTS_PK = "S#STARTS"
#: how far back ``manifests_in_flight`` reads the starts besides the index: far beyond AWS's "fraction of
#: a second" for a write to reach a global secondary index (``thingpress.backpressure``).
STARTS_HORIZON_SECONDS = 900
#: a start row's life (its ``expires_at``): it is read for ``STARTS_HORIZON_SECONDS`` only.
STARTS_TTL_SECONDS = 86400
INDEX_BY_THING = "by_thing"
INDEX_BY_STATUS = "by_status"
INDEX_BY_STATE = "by_state"
TTL_ATTRIBUTE = "expires_at"
DEFAULT_RETENTION_DAYS = 365

logger = Logger(service="thingpress")
_ser = TypeSerializer()
_de = TypeDeserializer()


def manifest_id(vendor: str, bucket: str, key: str, version: str) -> str:
    """The manifest id: vendor plus a digest of the exact S3 object version.

    Redelivery of the same S3 event gives the same id (resumable, idempotent); a
    re-upload is a new object version and so a new manifest. ``version`` is the S3
    version id (the stack enables versioning) or, for an unversioned bucket, the ETag.
    """
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version}".encode()).hexdigest()
    return f"{vendor}-{digest[:20]}"


def manifest_pk(mid: str) -> str:
    return f"M#{mid}"


def certificate_sk(fingerprint: str) -> str:
    return f"C#{fingerprint}"


def claims_pk(mid: str) -> str:
    return f"D#{mid}"


def shard_sk(shard: int) -> str:
    return f"{SHARD_PREFIX}{shard:02d}"


def refusal_sk(position: int) -> str:
    return f"R#{position:09d}"


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: _de.deserialize(v) for k, v in item.items()}
    # Numbers come back as Decimal; every number here is an integer.
    return {k: int(v) if type(v).__name__ == "Decimal" else v for k, v in out.items()}


def is_conflict(exc: BaseException) -> bool:
    """True when DynamoDB refused a write only because a transaction held one of its items.

    A single write answers ``TransactionConflictException``; a transaction is cancelled
    with reason ``TransactionConflict`` for the held items (a cancellation that also
    names ``ConditionalCheckFailed`` is a condition failure: retrying cannot change it).
    """
    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code")
    if code == "TransactionConflictException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = {r.get("Code") for r in exc.response.get("CancellationReasons") or []}
    return "TransactionConflict" in reasons and "ConditionalCheckFailed" not in reasons


def merged(summary: dict[str, Any], shards: list[dict[str, Any]]) -> dict[str, Any]:
    """A manifest's summary as read: the summary item with its shards' counters added
    (``SHARDED_COUNTERS``) and the latest ``updated_at`` of them all."""
    view = dict(summary)
    for counter in SHARDED_COUNTERS:
        view[counter] = int(summary.get(counter) or 0) + sum(int(s.get(counter) or 0) for s in shards)
    view["updated_at"] = max([summary.get("updated_at") or "", *(s.get("updated_at") or "" for s in shards)])
    return view


def merge_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Summaries as read from rows of several manifests (summary and shard items, any order)."""
    summaries: dict[str, dict[str, Any]] = {}
    shards: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("sk") == SUMMARY_SK:
            summaries[row["pk"]] = row
        elif str(row.get("sk", "")).startswith(SHARD_PREFIX):
            shards.setdefault(row["pk"], []).append(row)
    return [merged(summary, shards.get(pk, [])) for pk, summary in summaries.items()]


_T = TypeVar("_T")


def _epoch_number(seconds: float) -> Decimal:
    """Epoch seconds as a DynamoDB number, to the millisecond (the serializer takes no float)."""
    return Decimal(str(round(seconds, 3)))


@dataclass(frozen=True, slots=True)
class Handle:
    """Which message an invocation runs on: its chain and link (``thingpress.provider``, "One live chain").

    ``link`` is None for a manifest's S3 event (no link handed over yet).
    """

    chain: int = 0
    link: str | None = None

    def condition(self) -> tuple[str, dict[str, Any]]:
        """The condition "the summary is still on this handle", and its values."""
        chain = "(attribute_not_exists(chain) OR chain = :chain)" if self.chain == 0 else "chain = :chain"
        link = "attribute_not_exists(link)" if self.link is None else "link = :link"
        values: dict[str, Any] = {":chain": self.chain}
        if self.link is not None:
            values[":link"] = self.link
        return f"{chain} AND {link}", values

    @classmethod
    def of(cls, summary: dict[str, Any]) -> Handle:
        """The handle a summary is on now."""
        return cls(int(summary.get("chain") or 0), summary.get("link"))


@dataclass(frozen=True, slots=True)
class Progress:
    """What the provider parsed since its last checkpoint."""

    entries: int = 0
    duplicates: int = 0
    queued: int = 0
    rejected: int = 0
    #: of ``rejected``: entries refused because they carry no device certificate (``Tally.note``).
    no_certificates: int = 0


class ClaimsUnsettled(RuntimeError):
    """DynamoDB kept cancelling the claim transactions (conflicts, throttling): retry later."""


class AuditTable:
    """Typed access to the audit table through an injected low-level DynamoDB client."""

    def __init__(self, client: Any, table_name: str, retention_days: int = DEFAULT_RETENTION_DAYS,
                 announcer: CompletionEvents | None = None, *, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None):
        self.client = client
        self.table = table_name
        self.retention_seconds = retention_days * 86400
        #: puts the completion event for the manifests this table's :meth:`try_complete` completes.
        self.announcer = announcer
        self.sleep = sleep
        self._random = rng or random.Random()
        #: transaction conflicts met and retried by this table's writes (:meth:`_retrying`).
        self.conflicts = 0

    def _expires(self) -> int:
        return int(time.time()) + self.retention_seconds

    def _retrying(self, write: Callable[[], _T]) -> _T:
        """Run ``write``; retry it while DynamoDB refuses it for a transaction conflict (module docstring).

        ``write`` is called afresh on every attempt, so it may choose again (another shard).
        """
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                return write()
            except ClientError as exc:
                if not is_conflict(exc) or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
                self.conflicts += 1
                self.sleep(self._random.uniform(0, min(CONFLICT_BACKOFF_CAP_SECONDS,
                                                       CONFLICT_BACKOFF_SECONDS * 2 ** attempt)))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _update_summary(self, mid: str, update: str, condition: str, values: dict[str, Any],
                        names: dict[str, str] | None = None) -> bool:
        """One conditional update of the manifest's summary item (conflicts retried); False when
        the condition failed (nothing written)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "Key": to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
            "UpdateExpression": update, "ConditionExpression": condition,
            "ExpressionAttributeValues": to_item(values),
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            self._retrying(lambda: self.client.update_item(**kwargs))
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- manifest summary -------------------------------------------------

    def start_manifest(self, mid: str, *, vendor: str, bucket: str, key: str, version: str | None,
                       etag: str | None, size: int | None, now: datetime | None = None,
                       environment: str | None = None) -> dict[str, Any]:
        """Create the summary row if new; return the summary as stored (new or existing).

        An unfinished manifest's start is noted too (``STARTS_PK``, after the summary, before this
        invocation reads the manifests in flight): a redelivery notes it again, the same row.
        """
        stamp = now_iso(now)
        values = {
            "pk": manifest_pk(mid), "sk": SUMMARY_SK, "manifest_id": mid, "vendor": vendor, "environment": environment,
            "bucket": bucket, "key": key, "version_id": version, "etag": etag, "size": size,
            "state": RECEIVED, "entries": 0, "duplicates": 0, "queued": 0, "rejected": 0,
            "imported": 0, "already_present": 0, "failed": 0, "outstanding": 0, "checkpoint": 0,
            "parse_done": False, "chain": 0, "started_at": stamp, "updated_at": stamp,
            TTL_ATTRIBUTE: self._expires(),
        }
        try:
            self._retrying(lambda: self.client.put_item(TableName=self.table, Item=to_item(values),
                                                        ConditionExpression="attribute_not_exists(pk)"))
            summary = values
        except self.client.exceptions.ConditionalCheckFailedException:
            summary = self.get_summary(mid) or values
        if summary.get("state") in UNFINISHED_STATES:
            start = {"pk": STARTS_PK, "sk": f"{summary['started_at']}#{mid}", "manifest_id": mid,
                     "started_at": summary["started_at"], TTL_ATTRIBUTE: int(time.time()) + STARTS_TTL_SECONDS}
            self._retrying(lambda: self.client.put_item(TableName=self.table, Item=to_item(start)))
        return summary

    def get_summary(self, mid: str) -> dict[str, Any] | None:
        """The manifest's summary as read: its item plus its shards' counters (:func:`merged`)."""
        summary, shards = self.summary_items(mid)
        return None if summary is None else merged(summary, shards)

    def summary_items(self, mid: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The summary item and its shard items as stored: one strongly consistent Query."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :summary",
            "ExpressionAttributeValues": to_item({":pk": manifest_pk(mid), ":first": SHARD_PREFIX,
                                                  ":summary": SUMMARY_SK}),
        }
        summary: dict[str, Any] | None = None
        shards: list[dict[str, Any]] = []
        while True:
            page = self.client.query(**kwargs)
            for item in page.get("Items", []):
                row = from_item(item)
                if row["sk"] == SUMMARY_SK:
                    summary = row
                else:
                    shards.append(row)
            if "LastEvaluatedKey" not in page:
                return summary, shards
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def checkpoint(self, mid: str, position: int, progress: Progress, *, state: str = PARSING,
                   parse_done: bool = False, sha256: str | None = None, note: str | None = None,
                   previous: int | None = None, now: datetime | None = None,
                   cursor: dict[str, int] | None = None, handle: Handle | None = None) -> bool:
        """Commit provider progress up to ``position``. False if another invocation is ahead.

        The write is recognised as applied even when its response was lost and the
        SDK's automatic retry then failed the condition: each call writes a fresh
        ``commit_token`` and asks for the old item on a condition failure
        (``ReturnValuesOnConditionCheckFailure=ALL_OLD``); a stored token equal to
        this call's means the first attempt succeeded.

        ``previous`` (optional, recommended) is the checkpoint this progress was
        counted from: the commit then succeeds only if the stored checkpoint is still
        exactly that and parsing is not finished, so two invocations racing on one
        manifest can never both add the same stretch. ``note`` (optional) is a
        one-line remark kept on the summary, e.g. "signed manifest holds no device
        certificates: ... nothing to import". ``cursor`` (optional, ``Cursor.as_item``)
        is where reading resumes after ``position``. ``handle`` (optional) is the message this
        invocation runs on (``thingpress.provider``, "One live chain"): the commit then succeeds
        only if no other handle has taken the manifest over since.
        """
        names = {"#state": "state"}
        # Marks this very write: if its response is lost and the SDK's retry then fails the
        # condition (the first attempt moved the checkpoint), the old item returned with the
        # failure carries this token, and the commit is known to have been applied.
        token = uuid.uuid4().hex
        values: dict[str, Any] = {
            ":pos": position, ":e": progress.entries, ":d": progress.duplicates, ":q": progress.queued,
            ":r": progress.rejected, ":state": state, ":now": now_iso(now), ":done": parse_done,
            ":token": token,
        }
        sets = ["checkpoint = :pos", "#state = :state", "updated_at = :now", "parse_done = :done",
                "commit_token = :token"]
        if sha256:
            sets.append("sha256 = :sha")
            values[":sha"] = sha256
        if note:
            sets.append("note = :note")
            values[":note"] = note
        if cursor is not None:
            sets.append("#cursor = :cursor")
            names["#cursor"] = "cursor"
            values[":cursor"] = cursor
        adds = "entries :e, duplicates :d, queued :q, rejected :r, outstanding :q"
        if progress.no_certificates:
            adds += ", no_certificates :nc"
            values[":nc"] = progress.no_certificates
        if parse_done:
            sets.append("parsed_at = :now")
        if previous is not None:
            # Exactly from where this invocation started counting, never after the end.
            condition = "attribute_exists(pk) AND checkpoint = :prev AND parse_done = :false AND " + (
                "checkpoint <= :pos" if parse_done else "checkpoint < :pos")
            values.update({":prev": previous, ":false": False})
        elif parse_done:
            # Strictly forward, except a final commit at the same position (nothing new).
            condition = "attribute_exists(pk) AND (checkpoint < :pos OR (checkpoint = :pos AND :done = :true))"
            values[":true"] = True
        else:
            condition = "attribute_exists(pk) AND checkpoint < :pos"
        if handle is not None:
            owned, owned_values = handle.condition()
            condition += " AND " + owned
            values.update(owned_values)
        try:
            self._retrying(lambda: self.client.update_item(
                TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
                UpdateExpression="SET " + ", ".join(sets)
                + " ADD " + adds,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ))
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            stored = from_item(exc.response.get("Item") or {})
            if stored.get("commit_token") != token:
                return False
            # Our own write, applied by an earlier attempt of this call (response lost, retried).
        if parse_done:
            self.try_complete(mid, now=now)
        return True

    def claim_certificates(self, mid: str, claims: list[tuple[str, int]]) -> dict[int, int]:
        """Claim each ``(fingerprint, position)`` as that certificate's first place in the manifest.

        Returns ``{position: earlier position}`` for the duplicates: the claims some
        earlier position already holds. A claim by the same position again (a chunk
        replayed after a crash) is no duplicate. A certificate named twice in
        ``claims`` is a duplicate of its first occurrence's outcome. One conditional
        put per claim, ``MAX_CLAIMS_PER_TRANSACTION`` to a transaction: a cancelled
        transaction names the claims that failed their condition (with the stored
        row), and the others are sent again.
        """
        duplicates: dict[int, int] = {}
        first: dict[str, int] = {}
        repeats: list[tuple[str, int]] = []
        for fingerprint, position in claims:
            if fingerprint in first:
                repeats.append((fingerprint, position))
            else:
                first[fingerprint] = position
        pending = list(first.items())
        for start in range(0, len(pending), MAX_CLAIMS_PER_TRANSACTION):
            self._claim_group(mid, pending[start:start + MAX_CLAIMS_PER_TRANSACTION], duplicates)
        for fingerprint, position in repeats:
            own = first[fingerprint]
            duplicates[position] = duplicates.get(own, own)
        return duplicates

    def _claim_group(self, mid: str, group: list[tuple[str, int]], duplicates: dict[int, int]) -> None:
        expires = self._expires()
        for attempt in range(CLAIM_ATTEMPTS):
            if not group:
                return
            if attempt:  # the claims left were cancelled for a conflict or throttling: back off first
                self.sleep(self._random.uniform(0, min(CONFLICT_BACKOFF_CAP_SECONDS,
                                                       CONFLICT_BACKOFF_SECONDS * 2 ** attempt)))
            items = [{"Put": {
                "TableName": self.table,
                "Item": to_item({"pk": claims_pk(mid), "sk": fingerprint, "position": position,
                                 TTL_ATTRIBUTE: expires}),
                "ConditionExpression": "attribute_not_exists(pk) OR #p = :p",
                "ExpressionAttributeNames": {"#p": "position"},
                "ExpressionAttributeValues": to_item({":p": position}),
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }} for fingerprint, position in group]
            try:
                self.client.transact_write_items(TransactItems=items)
                return
            except self.client.exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons") or []
                if is_conflict(exc):
                    self.conflicts += 1
            retry: list[tuple[str, int]] = []
            for (fingerprint, position), reason in zip(group, reasons, strict=False):
                if reason.get("Code") == "ConditionalCheckFailed":
                    stored = from_item(reason.get("Item") or {})
                    earlier = stored.get("position")
                    if earlier is None:  # no row returned: read it
                        earlier = self._claimed_position(mid, fingerprint)
                    duplicates[position] = int(earlier)
                else:
                    retry.append((fingerprint, position))
            group = retry if len(reasons) == len(group) else group
        if group:
            raise ClaimsUnsettled(f"{len(group)} certificate claim(s) of manifest {mid} not settled after "
                                  f"{CLAIM_ATTEMPTS} transactions")

    def _claimed_position(self, mid: str, fingerprint: str) -> int:
        got = self.client.get_item(TableName=self.table, ConsistentRead=True,
                                   Key=to_item({"pk": claims_pk(mid), "sk": fingerprint}))
        return int(from_item(got["Item"])["position"])

    def set_staged(self, mid: str, key: str, *, size: int, sha256: str) -> None:
        """Record a manifest's staged object (an Infineon reel extracted once) and the reel's SHA-256.
        Idempotent: the same reel always stages to the same object."""
        self._retrying(lambda: self.client.update_item(
            TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
            UpdateExpression="SET staged = :k, staged_size = :n, reel_sha256 = :s",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_item({":k": key, ":n": size, ":s": sha256}),
        ))

    def refuse_manifest(self, mid: str, reason: str, now: datetime | None = None) -> None:
        """Mark a whole file refused (not a manifest, corrupt, empty ...): terminal."""
        self._retrying(lambda: self.client.update_item(
            TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
            UpdateExpression="SET #state = :s, reason = :r, completed_at = :now, updated_at = :now, parse_done = :t",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_item({":s": REFUSED, ":r": reason, ":now": now_iso(now), ":t": True}),
        ))

    def try_complete(self, mid: str, now: datetime | None = None) -> bool:
        """Mark the manifest COMPLETE if parsing is done and nothing is outstanding.

        Reads the summary with its shards (one consistent Query); once parsing is done
        ``queued`` is final and outcomes only add, so an ``outstanding`` of 0 read then
        stays 0. True for the one caller whose conditional update did it; that caller, and
        only it, puts the completion event (:mod:`thingpress.events`: at most once
        per manifest, the outcome kept on the summary as ``completion_event``).
        """
        summary, shards = self.summary_items(mid)
        if summary is None:
            return False
        seen = merged(summary, shards)
        if not seen.get("parse_done") or seen["outstanding"] != 0 or seen.get("state") in (COMPLETE, REFUSED):
            return False
        sets = "SET #state = :c, completed_at = :now, updated_at = :now"
        values: dict[str, Any] = {":c": COMPLETE, ":now": now_iso(now), ":t": True, ":refused": REFUSED}
        if self.announcer is not None:
            sets += ", completion_event = :pending"
            values[":pending"] = events.PENDING
        try:
            answer = self._retrying(lambda: self.client.update_item(
                TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
                UpdateExpression=sets,
                ConditionExpression="parse_done = :t AND #state <> :c AND #state <> :refused",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=to_item(values),
                ReturnValues="ALL_NEW",
            ))
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        if self.announcer is not None:
            self._announce(merged(from_item(answer["Attributes"]), shards))
        return True

    def _announce(self, summary: dict[str, Any]) -> None:
        """Put the completion event for ``summary`` once and record on it what happened (never raises)."""
        mid = summary["manifest_id"]
        try:
            event_id = self.announcer.publish(summary)  # type: ignore[union-attr]
        except (BotoCoreError, ClientError, events.EventRefused) as exc:
            logger.error("completion event not sent; it is not retried (see thingpress.events)",
                         extra={"manifest_id": mid, "error": str(exc)})
            sets, values = "completion_event = :s, completion_event_error = :e", {":s": events.FAILED,
                                                                                  ":e": str(exc)[:500]}
        else:
            sets, values = "completion_event = :s, completion_event_id = :e", {":s": events.SENT, ":e": event_id}
        self._retrying(lambda: self.client.update_item(
            TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
            UpdateExpression="SET " + sets, ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_item(values)))

    def note_paused(self, mid: str, *, checkpoint: int, seconds: int, now: datetime | None = None,
                    handle: Handle | None = None) -> bool:
        """A provider paused the manifest at ``checkpoint`` for ``seconds`` (the import window is full).

        Moves ``updated_at`` (a paused manifest is alive: the watchdog must not take a
        run of pauses without progress for a stall and resume it a second time) and
        records ``paused_until``. Conditional on the checkpoint still being
        ``checkpoint`` and parsing not finished (and, with ``handle``, on no other handle having
        taken over): False if another invocation moved on.
        """
        stamp = now or datetime.now(UTC)
        until = datetime.fromtimestamp(stamp.timestamp() + seconds, UTC)
        condition = "attribute_exists(pk) AND checkpoint = :c AND parse_done = :false"
        values: dict[str, Any] = {":now": now_iso(stamp), ":until": now_iso(until), ":c": checkpoint, ":false": False}
        if handle is not None:
            owned, owned_values = handle.condition()
            condition += " AND " + owned
            values.update(owned_values)
        return self._update_summary(mid, "SET updated_at = :now, paused_until = :until", condition, values)

    def claim(self, mid: str, handle: Handle, *, until: float, now: float) -> bool:
        """Take the manifest's lease for an invocation on ``handle`` until ``until`` (epoch seconds).

        Conditional on the summary still being on ``handle``, parsing not finished, and no
        other invocation's lease running at ``now``: so at most one invocation works on a
        manifest at a time (``thingpress.provider``, "One live chain"). False otherwise.
        """
        owned, values = handle.condition()
        return self._update_summary(
            mid, "SET lease_until = :until",
            f"attribute_exists(pk) AND parse_done = :false AND {owned} AND "
            "(attribute_not_exists(lease_until) OR lease_until < :now)",
            {**values, ":until": _epoch_number(until), ":now": _epoch_number(now), ":false": False})

    def release(self, mid: str, handle: Handle, *, until: float) -> None:
        """End the lease :meth:`claim` took until ``until`` (an invocation that fails early gives the
        manifest back at once: its message comes back and carries on). A no-op if it is not that lease."""
        owned, values = handle.condition()
        self._update_summary(mid, "REMOVE lease_until", f"{owned} AND lease_until = :until",
                             {**values, ":until": _epoch_number(until)})

    def hand_over(self, mid: str, handle: Handle, link: str) -> bool:
        """Pass the manifest from ``handle`` to the next message of its chain, ``link``; the lease ends.

        Written before that message is sent. False (nothing written) if the summary is no
        longer on ``handle``: another invocation took over.
        """
        owned, values = handle.condition()
        return self._update_summary(mid, "SET link = :next REMOVE lease_until", f"attribute_exists(pk) AND {owned}",
                                    {**values, ":next": link})

    def bump_chain(self, mid: str, *, seen: dict[str, Any], link: str, now: datetime | None = None) -> Handle | None:
        """Take an idle manifest over with a new chain of invocations (the watchdog's resume).

        Conditional on the summary still being as the caller judged it (``seen``: its chain,
        link and checkpoint; parsing not finished). Returns the new chain's handle (its first
        link ``link``), or None if the manifest moved meanwhile. Every handle of an older
        chain is stale from then on, and a lease it held ends (``thingpress.provider``).
        """
        old = Handle.of(seen)
        owned, values = old.condition()
        if not self._update_summary(
                mid, "SET chain = :next, link = :new_link, resumed_at = :now REMOVE lease_until",
                f"attribute_exists(pk) AND checkpoint = :c AND parse_done = :false AND {owned}",
                {**values, ":next": old.chain + 1, ":new_link": link, ":now": now_iso(now),
                 ":c": int(seen.get("checkpoint") or 0), ":false": False}):
            return None
        return Handle(old.chain + 1, link)

    def unfinished_manifests(self, *, idle_since: str | None = None) -> list[dict[str, Any]]:
        """Summaries (as read, with their shards) in ``UNFINISHED_STATES``, optionally only
        those whose last progress is before ``idle_since``.

        A query of the ``by_state`` index per state (no scan), then each listed
        manifest's summary read consistently (:meth:`get_summary`): the index is
        eventually consistent and holds the summary item only, while the importer's
        progress is on the shards.
        """
        return self._unfinished(self._listed_by_state(idle_since), idle_since)

    def manifests_in_flight(self, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """The unfinished manifests the providers' backpressure counts (summaries as read, with their shards).

        :meth:`unfinished_manifests` lists them from the ``by_state`` index, which shows a new
        summary only once the write has propagated to it ("a fraction of a second"); so the
        manifests started in the last ``STARTS_HORIZON_SECONDS`` are read besides, from the
        starts partition with a strongly consistent Query: a manifest whose start was noted
        before this read is counted, however late the index (``thingpress.backpressure``).
        """
        since = now_iso((now or datetime.now(UTC)) - timedelta(seconds=STARTS_HORIZON_SECONDS))
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True, "KeyConditionExpression": "pk = :pk AND sk >= :since",
            "ExpressionAttributeValues": to_item({":pk": STARTS_PK, ":since": since}),
            "ProjectionExpression": "manifest_id",
        }
        started: list[str] = []
        while True:
            page = self.client.query(**kwargs)
            started.extend(from_item(i)["manifest_id"] for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return self._unfinished(list(dict.fromkeys([*self._listed_by_state(None), *started])), None)

    def _listed_by_state(self, idle_since: str | None) -> list[str]:
        """Manifest ids the ``by_state`` index lists in ``UNFINISHED_STATES`` (eventually consistent)."""
        listed: list[dict[str, Any]] = []
        for state in UNFINISHED_STATES:
            values: dict[str, Any] = {":s": state}
            condition = "#state = :s"
            if idle_since is not None:
                condition += " AND updated_at < :before"
                values[":before"] = idle_since
            kwargs: dict[str, Any] = {
                "TableName": self.table, "IndexName": INDEX_BY_STATE, "KeyConditionExpression": condition,
                "ExpressionAttributeNames": {"#state": "state"}, "ExpressionAttributeValues": to_item(values),
            }
            while True:
                page = self.client.query(**kwargs)
                listed.extend(from_item(i) for i in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return list(dict.fromkeys(row["manifest_id"] for row in listed))  # an item moving between states: once

    def _unfinished(self, manifest_ids: list[str], idle_since: str | None) -> list[dict[str, Any]]:
        """The summaries of ``manifest_ids`` read consistently, those still unfinished (and idle)."""
        rows = []
        for mid in manifest_ids:
            summary = self.get_summary(mid)
            if (summary is not None and summary.get("state") in UNFINISHED_STATES
                    and (idle_since is None or summary["updated_at"] < idle_since)):
                rows.append(summary)
        return rows

    def mark_stalled(self, mid: str, reason: str, *, seen: dict[str, Any], seen_shards: list[dict[str, Any]],
                     now: datetime | None = None) -> bool:
        """Mark a parsed manifest STALLED with ``reason``; False if it moved meanwhile.

        ``seen`` and ``seen_shards`` are the summary and shard items the caller judged
        (:meth:`summary_items`). One transaction, conditional on all of them being exactly
        as read: the summary still QUEUED, parsed, with the same ``updated_at``; each shard
        with the same ``updated_at`` and ``outstanding`` (an outcome within the same second
        moves ``outstanding``), and no shard that was not there. So of two watchdogs racing,
        one marks it; and an outcome recorded after the judgement wins. ``updated_at`` is
        left alone (no progress was made).
        """
        pk = to_item({"pk": manifest_pk(mid)})
        checks: list[dict[str, Any]] = []
        by_sk = {row["sk"]: row for row in seen_shards}
        for shard in range(SUMMARY_SHARDS):
            sk = shard_sk(shard)
            check: dict[str, Any] = {"TableName": self.table, "Key": {**pk, **to_item({"sk": sk})}}
            row = by_sk.get(sk)
            if row is None:
                check["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                check["ConditionExpression"] = "updated_at = :seen AND outstanding = :outstanding"
                check["ExpressionAttributeValues"] = to_item({":seen": row.get("updated_at"),
                                                              ":outstanding": int(row.get("outstanding") or 0)})
            checks.append({"ConditionCheck": check})
        return self._transact([{"Update": {
            "TableName": self.table, "Key": {**pk, **to_item({"sk": SUMMARY_SK})},
            "UpdateExpression": "SET #state = :stalled, reason = :r, stalled_at = :now",
            "ConditionExpression": "#state = :queued AND parse_done = :t AND updated_at = :seen",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": to_item({":stalled": STALLED, ":r": reason, ":now": now_iso(now),
                                                  ":queued": QUEUED, ":t": True, ":seen": seen["updated_at"]}),
        }}, *checks])

    # -- entries -------------------------------------------------------------

    def put_refusals(self, mid: str, vendor: str, refusals: list[dict[str, Any]], now: datetime | None = None) -> None:
        """Write provider refusal rows (idempotent puts keyed by position).

        Each dict: ``position``, ``reason`` and optionally ``thing_name``, ``fingerprint``.
        They are counted by the next ``checkpoint``.
        """
        stamp = now_iso(now)
        requests = [
            {"PutRequest": {"Item": to_item({
                "pk": manifest_pk(mid), "sk": refusal_sk(r["position"]), "manifest_id": mid, "vendor": vendor,
                "position": r["position"], "status": REJECTED, "reason": r["reason"],
                "thing_name": r.get("thing_name"), "fingerprint": r.get("fingerprint"),
                "updated_at": stamp, TTL_ATTRIBUTE: self._expires(),
            })}}
            for r in refusals
        ]
        for start in range(0, len(requests), 25):
            pending = {self.table: requests[start:start + 25]}
            for attempt in range(8):
                out = self.client.batch_write_item(RequestItems=pending)
                pending = out.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 2.0))
            if pending:
                raise RuntimeError(f"audit table kept {len(pending[self.table])} refusal rows unprocessed")

    # -- rollback ----------------------------------------------------------

    def begin_rollback(self, mid: str, *, mode: str, reason: str, now: datetime | None = None) -> None:
        """Note on the summary that a rollback runs (resumable: a second call just refreshes the note)."""
        self._retrying(lambda: self.client.update_item(
            TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
            UpdateExpression="SET rollback_started_at = :now, rollback_mode = :m, rollback_reason = :r, "
                             "updated_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_item({":now": now_iso(now), ":m": mode, ":r": reason}),
        ))

    def mark_rolled_back(self, mid: str, fingerprint: str, *, mode: str, reason: str, actions: list[str],
                         kept: list[str] | None = None, now: datetime | None = None) -> bool:
        """Record that a certificate row was rolled back (``actions``: what was done, in order).

        The first time keeps the import outcome as ``previous_status``. ``kept``:
        what was left because something else still used it (``rollback_kept``; a
        later rollback takes the row up again). False (and nothing written) when
        the row says rolled back already, completely, with this mode or a stronger one.
        """
        stronger = list(ROLLBACK_MODES[ROLLBACK_MODES.index(mode):])
        values: dict[str, Any] = {":rb": ROLLED_BACK, ":now": now_iso(now), ":m": mode, ":r": reason,
                                  ":a": actions or ["nothing to undo"]}
        values.update({f":s{i}": m for i, m in enumerate(stronger)})
        done = " OR ".join(f"rollback_mode = :s{i}" for i in range(len(stronger)))
        update = ("SET previous_status = if_not_exists(previous_status, #status), #status = :rb, "
                  "rolled_back_at = :now, rollback_mode = :m, rollback_reason = :r, rollback_actions = :a, "
                  "updated_at = :now")
        if kept:
            update += ", rollback_kept = :k"
            values[":k"] = kept
        else:
            update += " REMOVE rollback_kept"
        try:
            self._retrying(lambda: self.client.update_item(
                TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": certificate_sk(fingerprint)}),
                UpdateExpression=update,
                ConditionExpression=(f"attribute_exists(pk) AND NOT (#status = :rb AND ({done}) "
                                     "AND attribute_not_exists(rollback_kept))"),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_item(values),
            ))
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def finish_rollback(self, mid: str, *, mode: str, reason: str, rolled_back: int,
                        now: datetime | None = None) -> None:
        """The summary says ROLLED_BACK, with when, why, how and how many rows (``previous_state`` kept)."""
        self._retrying(lambda: self.client.update_item(
            TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": SUMMARY_SK}),
            UpdateExpression="SET previous_state = if_not_exists(previous_state, #state), #state = :rb, "
                             "rolled_back_at = :now, rollback_mode = :m, rollback_reason = :r, rolled_back = :n, "
                             "updated_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_item({":rb": ROLLED_BACK, ":now": now_iso(now), ":m": mode, ":r": reason,
                                               ":n": rolled_back}),
        ))

    def rows_for_thing(self, thing_name: str) -> list[dict[str, Any]]:
        """Every certificate row naming ``thing_name``, any manifest (the ``by_thing`` index)."""
        rows: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table, "IndexName": INDEX_BY_THING, "KeyConditionExpression": "thing_name = :t",
            "ExpressionAttributeValues": to_item({":t": thing_name}),
        }
        while True:
            page = self.client.query(**kwargs)
            rows.extend(from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return rows
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get_outcome(self, mid: str, fingerprint: str) -> dict[str, Any] | None:
        got = self.client.get_item(TableName=self.table, ConsistentRead=True,
                                   Key=to_item({"pk": manifest_pk(mid), "sk": certificate_sk(fingerprint)}))
        return from_item(got["Item"]) if "Item" in got else None

    def record_outcome(self, mid: str, fingerprint: str, status: str, *, vendor: str, position: int,
                       thing_name: str | None, reason: str | None = None, certificate_id: str | None = None,
                       attempts: int | None = None, now: datetime | None = None, complete: bool = True,
                       environment: str | None = None, certificate_registered: bool | None = None,
                       thing_created: bool | None = None) -> bool:
        """Record a certificate's terminal outcome exactly once.

        Returns False (and changes nothing) when the certificate already has one.
        ``complete=False`` leaves :meth:`try_complete` to the caller (the importer
        calls it once per batch and manifest instead of once per certificate).
        """
        if status not in COUNTER:
            raise ValueError(f"unknown status {status!r}")
        record = OutcomeRecord(mid, fingerprint, status, vendor=vendor, position=position, thing_name=thing_name,
                               reason=reason, certificate_id=certificate_id, attempts=attempts,
                               environment=environment, certificate_registered=certificate_registered,
                               thing_created=thing_created)
        if not self._record_together(mid, [record], now_iso(now)):
            return False
        if complete:
            self.try_complete(mid, now=now)
        return True

    def record_outcomes(self, outcomes: list[OutcomeRecord], now: datetime | None = None) -> list[bool]:
        """Record many outcomes (a batch), each exactly once; one transaction per manifest.

        The transaction puts every certificate row under ``attribute_not_exists``
        and moves the summary counters once, by the batch's totals: one DynamoDB
        write and one summary update per batch instead of one per certificate,
        and ten times fewer writes contending for the summary item. If any row
        exists already (a duplicate copy, a DLQ redrive) the transaction is
        cancelled as a whole and those outcomes are recorded one by one
        (:meth:`record_outcome`). A certificate named twice is recorded once.
        Returns, per outcome and in order, whether it was recorded by this call.
        Completion is left to the caller (:meth:`try_complete`).
        """
        recorded = [False] * len(outcomes)
        groups: dict[str, list[int]] = {}
        seen: set[tuple[str, str]] = set()
        for index, outcome in enumerate(outcomes):
            if outcome.status not in COUNTER:
                raise ValueError(f"unknown status {outcome.status!r}")
            if (outcome.manifest_id, outcome.fingerprint) not in seen:
                seen.add((outcome.manifest_id, outcome.fingerprint))
                groups.setdefault(outcome.manifest_id, []).append(index)
        stamp = now_iso(now)
        for mid, indexes in groups.items():
            for start in range(0, len(indexes), MAX_TRANSACTION_ROWS):
                chunk = indexes[start:start + MAX_TRANSACTION_ROWS]
                rows = [outcomes[i] for i in chunk]
                if self._record_together(mid, rows, stamp):
                    for i in chunk:
                        recorded[i] = True
                    continue
                for i in chunk:
                    o = outcomes[i]
                    recorded[i] = self.record_outcome(
                        o.manifest_id, o.fingerprint, o.status, vendor=o.vendor, position=o.position,
                        thing_name=o.thing_name, reason=o.reason, certificate_id=o.certificate_id,
                        attempts=o.attempts, now=now, complete=False, environment=o.environment,
                        certificate_registered=o.certificate_registered, thing_created=o.thing_created)
        return recorded

    def _record_together(self, mid: str, rows: list[OutcomeRecord], stamp: str) -> bool:
        """One transaction for ``rows`` of one manifest, counted on a shard; False if a row
        existed (nothing written)."""
        counts: dict[str, int] = {}
        for row in rows:
            counts[COUNTER[row.status]] = counts.get(COUNTER[row.status], 0) + 1
        puts: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": to_item(self._outcome_row(row, stamp)),
                     "ConditionExpression": "attribute_not_exists(pk)"}}
            for row in rows
        ]
        return self._transact(lambda: [*puts, self._shard_update(mid, {**counts, "outstanding": -len(rows)}, stamp)])

    def _shard_update(self, mid: str, adds: dict[str, int], stamp: str) -> dict[str, Any]:
        """A transaction's update of one shard drawn at random: ADD ``adds`` (counter -> delta)."""
        return {"Update": {
            "TableName": self.table, "Key": to_item({"pk": manifest_pk(mid),
                                                     "sk": shard_sk(self._random.randrange(SUMMARY_SHARDS))}),
            "UpdateExpression": "ADD " + ", ".join(f"{c} :{c}" for c in sorted(adds)) + " SET updated_at = :now",
            "ExpressionAttributeValues": to_item({**{f":{c}": n for c, n in adds.items()}, ":now": stamp}),
        }}

    def _outcome_row(self, o: OutcomeRecord, stamp: str) -> dict[str, Any]:
        return {
            "pk": manifest_pk(o.manifest_id), "sk": certificate_sk(o.fingerprint), "manifest_id": o.manifest_id,
            "vendor": o.vendor, "position": o.position, "thing_name": o.thing_name, "fingerprint": o.fingerprint,
            "status": o.status, "reason": o.reason, "certificate_id": o.certificate_id, "attempts": o.attempts,
            "environment": o.environment, "certificate_registered": o.certificate_registered,
            "thing_created": o.thing_created, "updated_at": stamp, TTL_ATTRIBUTE: self._expires(),
        }

    def resolve_failed(self, mid: str, fingerprint: str, status: str, *, reason: str | None = None,
                       certificate_id: str | None = None, attempts: int | None = None,
                       previous_failure: str | None = None, now: datetime | None = None,
                       environment: str | None = None, certificate_registered: bool | None = None,
                       thing_created: bool | None = None) -> bool:
        """Replace a ``FAILED`` outcome with the outcome of a later delivery (a DLQ redrive).

        One transaction: the row changes only if it still says FAILED, and the
        summary moves one count from ``failed`` to the new status's counter, so the
        totals still add up. ``previous_failure`` (the FAILED row's reason) is kept
        on the row. Returns False (changes nothing) if the row is not FAILED.
        """
        if status not in COUNTER or status == FAILED:
            allowed = ", ".join(s for s in STATUSES if s != FAILED)
            raise ValueError(f"a FAILED outcome can only be resolved to {allowed}, not {status!r}")
        stamp = now_iso(now)
        sets = ["#status = :s", "updated_at = :now"]
        values: dict[str, Any] = {":s": status, ":now": stamp, ":failed": FAILED}
        names = {"#status": "status"}
        removes = []
        for name, value in (("reason", reason), ("certificate_id", certificate_id), ("attempts", attempts),
                            ("previous_failure", previous_failure), ("environment", environment),
                            ("certificate_registered", certificate_registered), ("thing_created", thing_created)):
            names[f"#{name}"] = name
            if value is None:
                removes.append(f"#{name}")
            else:
                sets.append(f"#{name} = :{name}")
                values[f":{name}"] = value
        row = {"Update": {"TableName": self.table,
                          "Key": to_item({"pk": manifest_pk(mid), "sk": certificate_sk(fingerprint)}),
                          "UpdateExpression": "SET " + ", ".join(sets)
                          + (" REMOVE " + ", ".join(removes) if removes else ""),
                          "ConditionExpression": "#status = :failed",
                          "ExpressionAttributeNames": names,
                          "ExpressionAttributeValues": to_item(values)}}
        return self._transact(lambda: [row, self._shard_update(mid, {COUNTER[status]: 1, "failed": -1}, stamp)])

    def _transact(self, items: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]]) -> bool:
        """Run a transaction whose conditions are all idempotency conditions.

        ``items``, or a function that builds them afresh for each attempt (a shard drawn
        again). False when one of them failed (that work was done already, so nothing was
        written); a conflict is retried (:meth:`_retrying`); other cancellations
        (throttling) raise so the caller retries.
        """
        build = items if callable(items) else (lambda: items)
        try:
            self._retrying(lambda: self.client.transact_write_items(TransactItems=build()))
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                return False
            raise
        return True

    def iter_status(self, status: str) -> Iterator[dict[str, Any]]:
        """Every certificate row with ``status`` (index ``by_status``), one query page at a time."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "IndexName": INDEX_BY_STATUS, "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": to_item({":s": status}),
        }
        while True:
            page = self.client.query(**kwargs)
            yield from (from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def record_reconciled(self, mid: str, fingerprint: str, fixed: list[str], now: datetime | None = None) -> None:
        """Note on a certificate row what ``thingpress reconcile --fix`` re-applied, and when.

        The outcome and the summary counters are not touched: the certificate's
        import outcome stands; ``reconciled`` lists the repairs (latest run).
        """
        self._retrying(lambda: self.client.update_item(
            TableName=self.table, Key=to_item({"pk": manifest_pk(mid), "sk": certificate_sk(fingerprint)}),
            UpdateExpression="SET reconciled = :f, reconciled_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_item({":f": fixed, ":now": now_iso(now)}),
        ))

    def record_unreadable(self, message_id: str, reason: str, now: datetime | None = None) -> None:
        """Record an import message that cannot even be attributed to a manifest."""
        stamp = now_iso(now)
        self.client.put_item(TableName=self.table, Item=to_item({
            "pk": manifest_pk(UNREADABLE_MANIFEST), "sk": f"X#{message_id}", "status": REJECTED,
            "reason": reason, "message_id": message_id, "updated_at": stamp, TTL_ATTRIBUTE: self._expires(),
        }))

    def entries(self, mid: str) -> list[dict[str, Any]]:
        """Every row of a manifest except the summary, in key order."""
        return list(self.iter_entries(mid))

    def iter_entries(self, mid: str, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Every row of a manifest except the summary, in key order, one query page at a time."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "KeyConditionExpression": "pk = :pk AND sk > :s",
            "ExpressionAttributeValues": to_item({":pk": manifest_pk(mid), ":s": SUMMARY_SK}),
        }
        if page_size:
            kwargs["Limit"] = page_size
        while True:
            page = self.client.query(**kwargs)
            yield from (from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
