"""Certificate claims: the first position of each certificate in its manifest, the provider's
duplicate detection (``claim_certificates``; rows ``D#<manifest_id>``/``<fingerprint>``).

Plain conditional puts, not transactions
----------------------------------------
A claim is one conditional ``PutItem`` (``attribute_not_exists(pk) OR position = :p``, with
``ReturnValuesOnConditionCheckFailure=ALL_OLD``, so a refused claim names the position that
holds it without a read). Claims used to go ``MAX_CLAIMS_PER_TRANSACTION`` to a
``TransactWriteItems``, which costs two write units an item instead of one (developer guide,
"Capacity management for transactions",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling):
2.0 of the 5.2 write units a certificate cost, a third of a run's DynamoDB bill (issue 23). The
transaction bought nothing but batching, because no claim depends on another:

* one call's claims name distinct items: a certificate named twice in it is settled in memory
  (its later positions are duplicates of the first), so each item gets one put;
* the provider claims a batch (``core.run_chunk``: ``claim_batch`` entries, ``settle``), waits
  for every claim of it, and only then sends, refuses or counts its entries; the next batch (of
  later positions) is claimed after that. So for any certificate the earliest position is always
  claimed first, whether the puts of one batch go in order, together or one by one, and a claim
  is never decided by another claim of the same batch;
* a replay claims the same positions again (a chunk replayed after a crash, a reclaim of an old
  checkpoint's prefix: ``core.run_chunk``'s ``skip_to``/``reclaim``): a claim by its own position
  passes its condition, so a claim left behind by a call that died half-way (some puts applied,
  the chunk not committed) is found again as its own, exactly as if the transaction had applied,
  and nothing was counted or sent for it (the commit comes after the claims, ``core``);
* one invocation at a time works on a manifest (the lease, ``thingpress.provider``, "One live
  chain per manifest"), so two calls never claim the same manifest at once.

The only thing a transaction would add is all-or-nothing, and a partly applied batch is
indistinguishable, to every later claim, from the whole batch applied: each applied claim is a
certificate's true first position. The counts stay exact because they are committed by the
checkpoint, after the claims (``thingpress.audit``, "Counting, exactly once").

Kept while the manifest is parsed, not for the retention
-----------------------------------------------------------
A claim is read only by the provider, while it parses its manifest. So claims do not live for the
audit retention as the outcome rows do (a year by default): every claim of a manifest expires
(``expires_at``, the table's TTL attribute) :data:`CLAIMS_LIFETIME` after the manifest's start
(``started_at``), the same instant however late the claim is written, and the provider parses a
manifest no later than :data:`PARSING_TIME` after its start (``thingpress.provider.runtime``: past it,
the rest of the manifest is refused with the reason, never parsed without its claims). DynamoDB
deletes an item only after its expiry ("Using time to live (TTL) in DynamoDB",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html: items are deleted "within a
few days of their expiration time"; until then they are read as ever), and the day between the two
is far beyond a provider invocation (15 minutes at most): no claim a parse relies on is ever gone.
15 days: beyond SQS's 14-day retention of the manifest DLQ, so a redrive of a dead-lettered manifest
message still finds its claims (``stacks.defaults``).

The puts of a call go ``WRITE_THREADS`` at a time (``TableWrites._each``: the client is thread-safe;
botocore's pool holds 10 connections), so a batch of 100 claims takes about as long as the one transaction did
(``tests/benchmarks/bench_provider.py``). A put that DynamoDB refuses for throttling is retried by
botocore; one that meets a transaction (none writes claims today) is retried with backoff
(``TableWrites._retrying``); a claim still unsettled after that raises ``ClaimsUnsettled`` (the
provider's message is retried later: nothing was counted).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from thingpress.audit.keys import TTL_ATTRIBUTE, claims_pk, from_item, to_item
from thingpress.audit.writes import TableWrites

#: what DynamoDB answers a put it refuses for now, not for good: throttling (botocore has retried it
#: already) or a transaction holding the item (``_retrying`` has); the claim is retried later.
UNSETTLED_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                             "RequestLimitExceeded", "TransactionConflictException"})


#: how long after the manifest's start its claims expire (see the module docstring) ...
CLAIMS_LIFETIME = timedelta(days=16)
#: ... and how long after its start the provider may still parse it.
PARSING_TIME = timedelta(days=15)


def claims_expire_at(started: datetime) -> int:
    """The ``expires_at`` of every claim of a manifest started at ``started`` (epoch seconds)."""
    return int((started + CLAIMS_LIFETIME).timestamp())


class ClaimsUnsettled(RuntimeError):
    """DynamoDB kept refusing the claims (conflicts, throttling beyond the SDK's retries): retry later."""


class Claims(TableWrites):
    """The certificate claims of ``AuditTable``."""

    def claim_certificates(self, mid: str, claims: list[tuple[str, int]], *,
                           started: datetime | None = None) -> dict[int, int]:
        """Claim each ``(fingerprint, position)`` as that certificate's first place in the manifest.

        Returns ``{position: earlier position}`` for the duplicates: the claims some
        earlier position already holds. A claim by the same position again (a chunk
        replayed after a crash) is no duplicate. A certificate named twice in
        ``claims`` is a duplicate of its first occurrence's outcome. One conditional
        put per claim, ``WRITE_THREADS`` at a time (see the module docstring); the
        call returns once every claim is settled. The claims expire ``CLAIMS_LIFETIME`` after
        ``started``, the manifest's start (default: now).
        """
        duplicates: dict[int, int] = {}
        first: dict[str, int] = {}
        repeats: list[tuple[str, int]] = []
        for fingerprint, position in claims:
            if fingerprint in first:
                repeats.append((fingerprint, position))
            else:
                first[fingerprint] = position
        expires = claims_expire_at(started or datetime.now(UTC))
        pending = list(first.items())
        held = self._each(lambda claim: self._claim_one(mid, *claim, expires), pending)
        for (_, position), earlier in zip(pending, held, strict=True):
            if earlier is not None:
                duplicates[position] = earlier
        for fingerprint, position in repeats:
            own = first[fingerprint]
            duplicates[position] = duplicates.get(own, own)
        return duplicates

    def _claim_one(self, mid: str, fingerprint: str, position: int, expires: int) -> int | None:
        """Put one claim; the earlier position holding it, or None when this position holds it."""
        try:
            self._retrying(lambda: self.client.put_item(
                TableName=self.table,
                Item=to_item({"pk": claims_pk(mid), "sk": fingerprint, "position": position,
                              TTL_ATTRIBUTE: expires}),
                ConditionExpression="attribute_not_exists(pk) OR #p = :p",
                ExpressionAttributeNames={"#p": "position"},
                ExpressionAttributeValues=to_item({":p": position}),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ))
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            earlier = from_item(exc.response.get("Item") or {}).get("position")
            return int(earlier) if earlier is not None else self._claimed_position(mid, fingerprint)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in UNSETTLED_CODES:
                raise
            raise ClaimsUnsettled(f"the claim of position {position} in manifest {mid} is not settled: "
                                  f"{exc}") from exc
        return None

    def _claimed_position(self, mid: str, fingerprint: str) -> int:
        got = self.client.get_item(TableName=self.table, ConsistentRead=True,
                                   Key=to_item({"pk": claims_pk(mid), "sk": fingerprint}))
        return int(from_item(got["Item"])["position"])
