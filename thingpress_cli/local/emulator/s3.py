"""S3 as AWS answers it: bucket policies evaluated as over TLS, event records with the object version.

* **Bucket policies as AWS evaluates them over TLS.** moto evaluates a bucket
  policy's ``Deny`` statements on object requests but ignores their conditions'
  meaning: it evaluates only ``StringEquals`` (other operators always "hold"),
  and ``aws:SecureTransport`` is never set. The usual
  ``DenyInsecureTransport`` statement (``Bool aws:SecureTransport false``) then
  refuses every ``PutObject``. :func:`bucket_permission` evaluates as AWS does for
  a request over HTTPS (every AWS SDK call): a statement applies only when its
  conditions hold, with ``aws:SecureTransport`` = ``true``. Conditions are IAM's
  (:mod:`.iam_conditions`: ``StringLike``/``ArnLike`` wildcards as IAM matches them).
* **S3 event records with the object version.** For a versioned bucket, AWS's
  ``ObjectCreated`` record carries ``s3.object.versionId`` (and a ``sequencer``);
  moto's has neither, so a consumer could not tell which version an event is
  about. :func:`_s3_event_with_version` adds them.

The other S3 rules: a missing object is 403 to a caller that may not list the bucket
(:mod:`.s3_rules`); event notifications only where the queue's policies allow them
(:mod:`.service_paths`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from thingpress_cli.local.emulator.guard import Patched
from thingpress_cli.local.emulator.iam_conditions import condition_holds

PATCHED = (
    Patched("moto.s3.notifications", "_get_s3_event", ("event_name", "bucket", "key", "notification_id")),
    Patched("moto.s3.models", "FakeBucket.get_permission", ("self", "action", "resource")),
)

#: The request context AWS sees for an SDK call: always over TLS.
SECURE_CONTEXT = {"aws:SecureTransport": "true"}


def bucket_permission(policy: bytes | str | None, action: str, resource: str) -> Any:
    """AWS's verdict for ``action`` on ``resource`` under a bucket policy, for a request over TLS."""
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    if policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(policy)
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    permitted = False
    for raw in statements:
        if raw.get("Condition") and not condition_holds(raw["Condition"], SECURE_CONTEXT):
            continue  # the condition does not hold: the statement does not apply
        verdict = IAMPolicyStatement({k: v for k, v in raw.items() if k != "Condition"}).is_action_permitted(action, resource)
        if verdict == PermissionResult.DENIED:
            return verdict
        permitted = permitted or verdict == PermissionResult.PERMITTED
    return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL


def _s3_event_with_version(make_event: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """moto's S3 event builder, plus ``versionId`` and ``sequencer`` as AWS sends them."""
    counter = iter(range(1, 1 << 62))

    @functools.wraps(make_event)
    def event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        built = make_event(event_name, bucket, key, notification_id)
        for record in built.get("Records", []):
            obj = record["s3"]["object"]
            version = getattr(key, "version_id", None)
            if version and version != "null":
                obj["versionId"] = version
            obj["sequencer"] = f"{next(counter):016X}"
        return built

    return event


def install() -> None:
    """Bucket policies evaluated as over TLS; event records with the object version."""
    from moto.s3 import notifications as s3_notifications
    from moto.s3.models import FakeBucket

    s3_notifications._get_s3_event = _s3_event_with_version(s3_notifications._get_s3_event)

    @functools.wraps(FakeBucket.get_permission)
    def get_permission(self: Any, action: str, resource: str) -> Any:
        return bucket_permission(self.policy, action, resource)

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]
