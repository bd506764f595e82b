"""SQS answers as AWS gives them: ``SetQueueAttributes`` changes only the attributes it names.

AWS (Amazon SQS API reference, SetQueueAttributes,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html):
"Sets the value of one or more queue attributes, like a policy." An attribute the request does
not name keeps its value; ``Policy`` set to an empty string removes the policy.

moto 5.2 (``Queue._set_attributes``) ends every call with ``self.policy = attributes.get("Policy")``:
a request that does not name ``Policy`` (a redrive policy, a visibility timeout) silently removes
the queue's policy. The Terraform AWS provider writes a queue's policy with ``CreateQueue`` and its
``aws_sqs_queue_redrive_policy`` with a later ``SetQueueAttributes``; under moto every queue with a
dead-letter queue then lost the policy that lets S3 deliver its event notifications, and with the
deliveries judged as AWS judges them (:mod:`.service_paths`) no manifest was ever picked up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from thingpress_cli.local.emulator.guard import Patched

#: The moto internals this module wraps, with moto's parameters (checked by :func:`.guard.check`).
PATCHED = (Patched("moto.sqs.models", "Queue._set_attributes", ("self", "attributes", "now")),)

#: moto's storage of a queue's policy (the ``policy`` property reads and writes it).
_POLICY_FIELD = "_policy_json"


def keep_unnamed_policy(set_attributes: Callable[..., None]) -> Callable[..., None]:
    """``Queue._set_attributes`` that keeps the policy when the request does not name ``Policy``."""

    @functools.wraps(set_attributes)
    def _set_attributes(self: Any, attributes: dict[str, Any], now: float | None = None) -> None:
        if "Policy" in attributes or not hasattr(self, _POLICY_FIELD):  # named, or the queue's creation
            set_attributes(self, attributes, now)
            return
        kept = getattr(self, _POLICY_FIELD)
        set_attributes(self, attributes, now)
        setattr(self, _POLICY_FIELD, kept)

    return _set_attributes


def install() -> None:
    """Apply the rule to moto's SQS (the emulator's and the in-process fixtures')."""
    from moto.sqs.models import Queue

    Queue._set_attributes = keep_unnamed_policy(Queue._set_attributes)  # type: ignore[method-assign]
