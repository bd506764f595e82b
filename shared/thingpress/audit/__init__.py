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
rows (``iter_entries``) are unchanged by them; they expire 16 days after the manifest's start, not
with the retention (``thingpress.audit.claims``: the provider parses a manifest for 15 days at most).

A manifest start is noted in one partition for all manifests (``start_manifest``), so
the providers' backpressure can read every manifest started lately *consistently*
(``manifests_in_flight``): the ``by_state`` index is eventually consistent and lists a
new summary only a moment after it is written (``thingpress.backpressure``, "What the
bound assumes"). A start row holds no index attribute and expires after a day.

Global secondary indexes (projection ALL):

* ``by_thing``:  hash ``thing_name``, range ``updated_at`` -- "what happened to thing X?"
  (a rollback keeps a thing other live manifests name).
* ``by_state``:  hash ``state``, range ``updated_at`` -- "every manifest still PARSING
  that has made no progress since T" (the watchdog), and every manifest (the CLI).

Entry rows carry ``status`` (one of ``STATUSES``); summary rows carry ``state``
instead (``MANIFEST_STATES``), so the state index holds manifest summaries only. A
write to an item an index holds is also a write to that index (a write unit per KB
of the entry: developer guide, "Provisioned throughput considerations for global
secondary indexes", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations.Writes),
so there is no index by certificate ``status``: it would cost one write unit per
certificate for a query nothing needs at import time; the rows of a status are read
manifest by manifest (``by_state`` lists them, ``iter_entries`` reads them, as
``thingpress reconcile`` does).
Every row has ``expires_at`` (epoch seconds, the table's TTL attribute).

A summary's ``updated_at`` is its last progress: every provider checkpoint and
every importer count of outcomes sets it, and so does a provider pausing the
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
importer never writes the summary. Its count of a batch's outcomes moves the counters
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
``cursor`` where the next chunk starts reading (``thingpress.cursor``). The importer records a
batch's outcomes with ``record_outcomes``: each certificate row is put only if it does not
exist (a conditional PutItem), then one update ADDs the rows it wrote to their outcome counters
and takes them from ``outstanding``, on a shard. A redelivered message finds its row and changes
nothing. The manifest is ``COMPLETE`` once the provider has
finished parsing (``parse_done``) and ``outstanding`` (summary plus shards) is 0; then

    imported + already_present + rejected + failed + duplicates == entries

where ``entries`` counts every entry of the file and ``duplicates`` the entries
that repeat a certificate already seen earlier in the same manifest (imported once).

Rows and their count are two writes, not one transaction: a transaction bills each item
twice (two write units per KB, DynamoDB's on-demand pricing), and the rows are most of the
table's writes (issue 23, cost per million certificates). What keeps the count exact:

* **a lost answer** -- a put applied whose answer never came is sent again by botocore and
  fails its condition; the row it returns with the failure (``ALL_OLD``) carries the call's
  ``write_token``, so the call knows the row is its own and counts it. The count is a
  transaction of one item, so botocore's resend of it (same ``ClientRequestToken``) is
  answered without being applied twice, where a plain ``UpdateItem`` ADD would count twice.
* **a death between the two** -- an invocation killed after its rows and before their count,
  or whose count fails for good, leaves rows no counter has; no later delivery counts them (each
  finds its row). The manifest then stops short of ``COMPLETE`` and, once idle for the
  watchdog's ``stall_after_seconds`` (longer than any invocation lives), the watchdog counts
  its rows again (``recount``) and adds what the shards lack, conditional on the shards as
  it read them. The counters can lag the rows, never exceed them; only completion waits.

Modules
-------
===============  ==================================================================================
``table``        ``AuditTable``: the table, made of the parts below
``writes``       the client and every write's discipline: conflicts retried (``is_conflict``),
                 conditional summary updates, idempotent transactions
``keys``         keys and items: ``manifest_id``, ``manifest_pk``, ``claims_pk``, ..., ``to_item``,
                 ``from_item``, the index and TTL names
``states``       certificate statuses, manifest states, the counters that add up
``summaries``    summaries and their shards (``merged``), the start, checkpoints (``Progress``),
                 completion, the pause note, the results files' note, the STALLED mark
``chain``        ``Handle``, the lease and the hand-overs of one live chain
``claims``       certificate claims (``claim_certificates``, ``ClaimsUnsettled``)
``outcomes``     outcome rows and their count (``OutcomeRecord``, ``record_outcomes``,
                 ``recount``), refusal rows, unreadable messages
``rollback``     rollback marks and reconcile notes
``queries``      entries, rows of a thing or a status, the unfinished manifests
===============  ==================================================================================

Re-exported here: ``AuditTable`` and the statuses the importer function's handler imports.
"""

from __future__ import annotations

from thingpress.audit.states import ALREADY_PRESENT, FAILED, IMPORTED, REJECTED
from thingpress.audit.table import AuditTable

__all__ = ["ALREADY_PRESENT", "FAILED", "IMPORTED", "REJECTED", "AuditTable"]
