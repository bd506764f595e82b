"""The grants no recorded call or service path exercises, each with its reason (``make iam-check``).

One job: the one list of excuses (:data:`UNEXERCISED`) and who holds a policy's grants as
they name it (:func:`holder_of`); :mod:`.static_checks` reports any unexercised grant that no
excuse names.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.naming import FUNCTION_KEYS, LIFECYCLE, RESULTS, VENDORS, provider_key

#: Who holds a role's grants: the function key (``stacks.naming.FUNCTION_KEYS``: ``importer``,
#: ``provider_<vendor>``, ``watchdog``, ``results``); the stack's key policy: ``key``.
KEY = "key"
PROVIDERS = tuple(provider_key(vendor) for vendor in VENDORS)
#: Every action of the statement (only for a statement whose whole purpose is one reason).
EVERY_ACTION = "*"


@dataclass(frozen=True)
class Excuse:
    """Grants that no recorded call or service path exercises, and why: statement ``sid``'s ``actions``
    held by each of ``holders``. Keyed by holder, statement and action, so a reason excuses exactly
    the grants it names, never the same statement on another role."""

    holders: tuple[str, ...]
    sid: str
    actions: tuple[str, ...]
    reason: str

    def keys(self) -> set[tuple[str, str, str]]:
        return {(holder, self.sid, action) for holder in self.holders for action in self.actions}


#: Granted actions no recorded call or service path exercises, each with its reason: the one list,
#: one entry per reason.
UNEXERCISED: tuple[Excuse, ...] = (
    Excuse((KEY,), "AccountAdministersAndUsesKeyThroughIam", (EVERY_ACTION,),
           "the key policy's delegation to the account: who may use the key is decided by IAM policies "
           "(the role policies checked here); without it the key would be unmanageable"),
    Excuse((KEY,), "CloudWatchLogsEncryptsThisDeploymentsLogGroups",
           ("kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKeyWithoutPlaintext"),
           "AWS's documented key policy for CloudWatch Logs (Encrypt*, Decrypt*, ReEncrypt*, GenerateDataKey*, "
           "Describe*): Logs re-encrypts on key rotation"),
    Excuse(PROVIDERS, "RecordManifests", ("dynamodb:GetItem",),
           "one provider code path for every vendor: a claim refused without the stored row returned is read "
           "(AuditTable._claimed_position); a run records it only where that happens"),
    Excuse(PROVIDERS, "RecordManifests", ("dynamodb:BatchWriteItem",),
           "one provider code path for every vendor: refused entries are batch-written (AuditLog.put_refusals); "
           "the sample manifests of some vendors have none"),
    Excuse(("importer",), "RecordOutcomes", ("dynamodb:GetItem",),
           "the importer reads a certificate's row when its conditional write finds one "
           "(AuditTable.get_outcome): redeliveries and races, which a run has or has not"),
    Excuse((RESULTS,), "WriteResultsFiles", ("s3:AbortMultipartUpload",),
           "the results writer aborts a multipart upload only when a write fails or finds its file written "
           "already (a redelivered event; thingpress.results.writer), and uploads in parts only past 8 MiB, "
           "which a local run's manifests never reach"),
    Excuse((LIFECYCLE,), "WriteJobResultsFiles", ("s3:AbortMultipartUpload",),
           "the lifecycle function writes a job's results files as the results writer does (StreamedObject): "
           "it aborts a multipart upload only when a write fails or finds its file written already, and uploads "
           "in parts only past 8 MiB, which a local run's lists never reach"),
    Excuse(PROVIDERS, "PutCompletionEventIfLastToFinish", ("events:PutEvents",),
           "a provider completes a manifest only when nothing is outstanding at its last checkpoint (every entry "
           "refused or a duplicate) or when it finds a parsed manifest whose completer died: a vendor's run has "
           "these or not (the importer's and the watchdog's grants must be exercised)"),
)


def holder_of(policy_name: str) -> str:
    """Who holds a policy's grants, as :class:`Excuse` names them (the policy's name when no rule applies)."""
    if policy_name.startswith("aws_kms_key "):
        return KEY
    if policy_name.startswith("role "):
        role = policy_name.split(" ", 1)[1]
        for function in FUNCTION_KEYS:
            if role.endswith(f"-{function.replace('_', '-')}-role"):
                return function
    return policy_name
