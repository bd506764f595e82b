"""IAM policy documents as plain data, rendered to JSON strings.

Values may embed cdktf tokens (ARNs of resources in the stack); cdktf resolves
them inside the JSON string to Terraform interpolations. Pure Python.

Rules kept here and checked by tests/stacks: no ``*`` in any Allow action; a
``*`` resource only where the API has no resource-level permission (each such
statement names why in its ``Sid``); Deny statements may use a service wildcard
(``s3:*``) because a deny must cover every action, not a chosen few.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

VERSION = "2012-10-17"


def statement(sid: str, actions: Sequence[str], resources: Sequence[str] | str | None, *, effect: str = "Allow",
              principal: dict[str, Any] | str | None = None, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    if effect == "Allow" and any("*" in a for a in actions):
        raise ValueError(f"statement {sid}: wildcard action in {list(actions)}")
    out: dict[str, Any] = {"Sid": sid, "Effect": effect}
    if principal is not None:
        out["Principal"] = principal
    out["Action"] = list(actions) if len(actions) != 1 else actions[0]
    if resources is not None:  # None: a trust policy, which has no Resource
        out["Resource"] = resources if isinstance(resources, str) else list(resources)
    if condition:
        out["Condition"] = condition
    return out


def document(*statements: dict[str, Any]) -> str:
    sids = [s["Sid"] for s in statements]
    if len(set(sids)) != len(sids):
        raise ValueError(f"duplicate statement ids in {sids}")
    return json.dumps({"Version": VERSION, "Statement": list(statements)}, separators=(",", ":"))


def deny_insecure_transport(service: str, resources: Sequence[str] | str) -> dict[str, Any]:
    """Deny every request to the resources that does not use TLS."""
    return statement("DenyInsecureTransport", [f"{service}:*"], resources, effect="Deny", principal="*",
                     condition={"Bool": {"aws:SecureTransport": "false"}})
