"""Helpers to read a synthesized cdk.tf.json (test support, not a test module)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

#: resource type -> attributes holding a JSON policy document.
POLICY_ATTRIBUTES = {
    "aws_iam_role": ("assume_role_policy",),
    "aws_iam_role_policy": ("policy",),
    "aws_kms_key": ("policy",),
    "aws_sqs_queue": ("policy",),
    "aws_s3_bucket_policy": ("policy",),
    "aws_sns_topic_policy": ("policy",),
    "aws_iot_policy": ("policy",),
}


def resources(doc: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return doc.get("resource", {}).get(rtype, {})


def policies(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``type.name.attribute``, parsed document) for every policy in the stack."""
    for rtype, attrs in POLICY_ATTRIBUTES.items():
        for name, body in resources(doc, rtype).items():
            for attr in attrs:
                if attr in body:
                    yield f"{rtype}.{name}.{attr}", json.loads(body[attr])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def ref(rtype: str, name: str, attr: str) -> str:
    return "${" + f"{rtype}.{name}.{attr}" + "}"


def find_by(doc: dict[str, Any], rtype: str, attr: str, value: Any) -> tuple[str, dict[str, Any]]:
    matches = [(n, b) for n, b in resources(doc, rtype).items() if b.get(attr) == value]
    assert len(matches) == 1, f"{rtype} with {attr}={value!r}: {len(matches)} found"
    return matches[0]


def by_ref(doc: dict[str, Any], reference: str) -> tuple[str, dict[str, Any]]:
    """The resource a ``${type.name.attr}`` reference points at."""
    inner = reference.removeprefix("${").removesuffix("}")
    rtype, name, _attr = inner.split(".", 2)
    return name, resources(doc, rtype)[name]


def redrive_of(doc: dict[str, Any], queue_name: str) -> dict[str, Any] | None:
    """The parsed redrive policy (``aws_sqs_queue_redrive_policy``) of the queue named ``queue_name``."""
    found = [json.loads(body["redrive_policy"]) for body in resources(doc, "aws_sqs_queue_redrive_policy").values()
             if by_ref(doc, body["queue_url"])[1].get("name") == queue_name]
    assert len(found) <= 1, f"{queue_name}: {len(found)} redrive policies"
    return found[0] if found else None


def role_statements(doc: dict[str, Any], function: tuple[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The statements, by Sid, of the inline policy on ``function``'s role (``find_by``'s answer)."""
    _, fn = function
    role_name, _ = by_ref(doc, fn["role"])
    (policy,) = [p for p in resources(doc, "aws_iam_role_policy").values()
                 if p["role"] == ref("aws_iam_role", role_name, "id")]
    return {st["Sid"]: st for st in json.loads(policy["policy"])["Statement"]}
