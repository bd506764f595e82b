"""SQS answers as AWS gives them: ``SetQueueAttributes`` changes only the attributes it names, and
``GetQueueAttributes`` gives the redrive policy as AWS writes it.

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

AWS answers ``RedrivePolicy`` as compact JSON, ``maxReceiveCount`` a number even when it was set as
a string (the AWS CLI's examples: ``set-queue-attributes`` sets ``\"maxReceiveCount\":\"1000\"``,
``get-queue-attributes`` answers ``{"deadLetterTargetArn":"arn:...:MyDeadLetterQueue","maxReceiveCount":1000}``;
aws/aws-cli, awscli/examples/sqs/). moto 5.2 answers ``json.dumps`` of what it kept, with a space
after each colon and comma. The Terraform AWS provider keeps that answer in the queue's state and
compares it with its own compact form of the same JSON (``redrive_policy``'s ``StateFunc``,
``structure.NormalizeJsonString``): every plan after a deploy updated all seven queues with a
dead-letter queue ("whitespace changes"). A repeated ``thingpress local up`` now plans no change.
:func:`compact_redrive_policy` answers it as AWS does.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from thingpress_cli.local.emulator.guard import Patched

#: The moto internals this module wraps, with moto's parameters (checked by :func:`.guard.check`).
PATCHED = (Patched("moto.sqs.models", "Queue._set_attributes", ("self", "attributes", "now")),
           Patched("moto.sqs.models", "Queue.attributes"))

#: The redrive policy's keys in the order AWS writes them; any other follows as it was set.
REDRIVE_KEYS = ("deadLetterTargetArn", "maxReceiveCount")

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


def compact_redrive_policy(attributes: property) -> property:
    """``Queue.attributes`` with ``RedrivePolicy`` as AWS writes it: compact, its keys in AWS's order."""

    @functools.wraps(attributes.fget)  # type: ignore[arg-type]
    def answered(self: Any) -> dict[str, Any]:
        result = attributes.fget(self)  # type: ignore[misc]
        policy = self.redrive_policy
        if "RedrivePolicy" in result and isinstance(policy, dict):
            ordered = {key: policy[key] for key in REDRIVE_KEYS if key in policy}
            ordered.update((key, value) for key, value in policy.items() if key not in ordered)
            result["RedrivePolicy"] = json.dumps(ordered, separators=(",", ":"))
        return result

    return property(answered)


def install() -> None:
    """Apply the rules to moto's SQS (the emulator's and the in-process fixtures')."""
    from moto.sqs.models import Queue

    Queue._set_attributes = keep_unnamed_policy(Queue._set_attributes)  # type: ignore[method-assign]
    Queue.attributes = compact_redrive_policy(Queue.attributes)  # type: ignore[method-assign]
