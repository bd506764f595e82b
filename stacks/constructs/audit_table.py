"""The DynamoDB audit table, keyed exactly as ``thingpress.audit`` documents."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTableGlobalSecondaryIndex,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
    DynamodbTableTtl,
)
from constructs import Construct
from thingpress.audit.keys import INDEX_BY_STATE, INDEX_BY_THING, TTL_ATTRIBUTE

#: (index, hash key, range key), as thingpress.audit documents them. No index of certificate rows by
#: status: every certificate row would be written to it too, one write unit each (issue 23).
INDEXES = ((INDEX_BY_THING, "thing_name", "updated_at"), (INDEX_BY_STATE, "state", "updated_at"))


class AuditTable(Construct):
    """On-demand, PITR, SSE-KMS, TTL on ``expires_at``; ``pk``/``sk`` + by_thing/by_state."""

    def __init__(self, scope: Construct, id_: str, *, name: str, kms_key_arn: str, deletion_protection: bool):
        super().__init__(scope, id_)
        attributes = ["pk", "sk", *sorted({k for _, h, r in INDEXES for k in (h, r)})]
        self.table = DynamodbTable(
            self, "table", name=name, billing_mode="PAY_PER_REQUEST", hash_key="pk", range_key="sk",
            attribute=[DynamodbTableAttribute(name=a, type="S") for a in attributes],
            global_secondary_index=[DynamodbTableGlobalSecondaryIndex(name=n, hash_key=h, range_key=r,
                                                                      projection_type="ALL")
                                    for n, h, r in INDEXES],
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=kms_key_arn),
            ttl=DynamodbTableTtl(attribute_name=TTL_ATTRIBUTE, enabled=True),
            deletion_protection_enabled=deletion_protection,
        )
        self.name = self.table.name
        self.arn = self.table.arn
