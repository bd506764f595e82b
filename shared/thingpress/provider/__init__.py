"""The provider runtime: one vendor manifest in S3 -> one import message per certificate.

Every provider function (``lambdas/provider_<vendor>``) is a thin handler over
``Provider``. A provider is triggered from its vendor's manifest queue; a message
body is one of

* an S3 event notification (``ObjectCreated:*``) naming the manifest object;
* the ``s3:TestEvent`` S3 sends when a notification is configured (ignored);
* a continuation message of our own (``thingpress.continue/1``), sent to the same
  queue when a manifest is too large or too slow for one invocation.

For a manifest the provider

1. derives the manifest id from the exact object version (``thingpress.audit.keys.manifest_id``)
   and creates the summary row; a manifest already finished (``parse_done``,
   ``COMPLETE``, ``REFUSED``) is left alone, so a redelivered event does nothing;
2. refuses, as a whole and for good (audit ``REFUSED`` with the reason, error log,
   message acknowledged), an object whose suffix is not this vendor's, an object
   that is gone, and a file that is not a readable manifest (``ManifestError``);
3. streams the object through the vendor parser with bounded memory (the Infineon
   parser spools a 7z reel to a bounded temporary file because py7zr needs to
   seek), hashing the manifest bytes on the way;
4. hands the entries to the pure core, ``thingpress.provider.core.run_chunk``,
   through ``AwsPorts``: the adapters for the audit table (certificate claims, refusal
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

Modules
-------
=====================  ===========================================================================
``runtime``            ``Provider`` (the Lambda entry: ``handle``, ``handle_record``, ``process``,
                       ``resume``, ``defer``, ``refuse``; one chunk through the core) and ``Tuning``
``results``            ``RunResult``: what one invocation did with one manifest
``queue_messages``     the manifest queue's messages: ``ObjectRef``, ``Continuation``,
                       ``parse_queue_message``, ``UnreadableMessage``
``chain``              one live chain: the lease, stale and busy handles, hand-overs (mixed in)
``pauses``             backpressure pauses (mixed in)
``core``               the pure core: ``run_chunk`` and its ``Ports``, ``Pace``, ``ChunkResult``
``ports``              the core's ports on AWS (``AwsPorts``)
``reading``            the S3 ranged reader from a cursor (``open_object``), ``HashingReader``, ``digest``
``staging``            Infineon staging (``stage_reel``, ``staging_key``)
``sending``            ``BatchSender`` (SendMessageBatch) and ``MessageTooLarge``
``signers``            the Microchip signers, read from S3 (``load_signers``)
``deadline``           ``Deadline``: when an invocation must hand over
``failures``           ``ProviderError`` (retried) and the reasons of refusals (``refusal_reason``)
``telemetry``          the provider's logger and metrics
=====================  ===========================================================================

The pure core lives here, as ``core``, not beside the package: only the provider runs it, its
``Ports`` are what ``ports`` adapts, and its ``ChunkResult`` is what ``runtime`` turns into a
``RunResult``, so the three read together. It stays pure by what it calls (no client, no clock
of its own), which its place does not change. Only ``Provider`` is re-exported: the provider
functions' handlers import it.
"""

from __future__ import annotations

from thingpress.provider.runtime import Provider

__all__ = ["Provider"]
