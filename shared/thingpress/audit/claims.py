"""Certificate claims: the first position of each certificate in its manifest, the provider's
duplicate detection (``claim_certificates``; rows ``D#<manifest_id>``/``<fingerprint>``)."""

from __future__ import annotations

from thingpress.audit.keys import TTL_ATTRIBUTE, claims_pk, from_item, to_item
from thingpress.audit.writes import CONFLICT_BACKOFF_CAP_SECONDS, CONFLICT_BACKOFF_SECONDS, TableWrites, is_conflict

#: certificate claims per transaction (DynamoDB's limit).
MAX_CLAIMS_PER_TRANSACTION = 100
#: transactions a batch of claims may take before giving up (each one settles at least one claim
#: unless DynamoDB cancels it for a conflict or throttling).
CLAIM_ATTEMPTS = 8


class ClaimsUnsettled(RuntimeError):
    """DynamoDB kept cancelling the claim transactions (conflicts, throttling): retry later."""


class Claims(TableWrites):
    """The certificate claims of ``AuditTable``."""

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
