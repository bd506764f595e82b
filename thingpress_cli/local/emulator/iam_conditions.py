"""IAM's matching and policy evaluation, as the emulator's AWS rules need them: one implementation.

The emulator judges policies where moto does not (bucket policies over TLS, the
service paths of :mod:`.service_paths`, the caller's ``s3:ListBucket`` in
:mod:`.s3_rules`). Each of those asks the same questions, answered here once and as
IAM answers them:

* **Condition operators** (IAM user guide, "IAM JSON policy elements: Condition
  operators",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
  ``StringLike`` matches the whole value, with "multi-character match wildcards (*)
  or single-character match wildcards (?) anywhere in the string" and nothing else:
  ``[ab]`` is the three characters ``[``, ``a``... (``fnmatch``, used before, took it
  for a character class). ``ArnLike``/``ArnEquals``: "Each of the six colon-delimited
  components of the ARN is checked separately and each can include multi-character
  match wildcards (*) or single-character match wildcards (?)"; "the ``ArnEquals``
  and ``ArnLike`` condition operators behave identically". So a ``*`` never reaches
  into the next component (``fnmatch`` let ``arn:aws:sqs:*:1:q`` match the queue
  ``1:q`` of account ``2``), and a value or pattern that is not six components
  matches nothing. The last component, the resource, runs to the end, colons and all.
  A policy variable (``${aws:SourceAccount}``, ``${*}``...) is replaced first, as the
  user guide's "IAM policy elements: Variables and tags" describes; one with no value
  in the request makes the value match nothing.
* **Action element**: case-insensitive, ``*`` and ``?`` wildcards.
* **Resource element** (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html):
  wildcards "within the individual segments of an ARN"; "If the * wildcard is the
  last character of a resource ARN segment, it can expand to match beyond the colon
  boundaries" (unlike ``ArnLike``).
* **Evaluation**: an explicit ``Deny`` wins, else any ``Allow``, else implicitly denied.

The ``make iam-check`` evaluator (``@cloud-copilot/iam-simulate``, Node) decides the
same questions offline; the emulator answers requests inside moto's Python process,
so it needs these few, tested here against that page's rules
(``tests/unit/local/emulator/test_iam_conditions.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

#: Condition operators this module evaluates (each also with ``IfExists``), and ``Null``.
BASE_OPERATORS = ("Bool", "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
                  "StringLike", "StringNotLike", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike")
#: Policy variables that stand for the special characters themselves.
_ESCAPES = {"*": "*", "?": "?", "$": "$"}
_STAR, _ONE = object(), object()  # wildcard tokens, apart from literal text


class UnsupportedCondition(ValueError):
    """A condition operator the emulator does not evaluate (loud: it would otherwise be guessed)."""


def _tokens(pattern: str, context: Mapping[str, str] | None) -> list[Any] | None:
    """The pattern as literal strings and wildcard tokens, its policy variables replaced.

    None when a variable has no value in ``context`` (and no default): the value then
    matches nothing.
    """
    out: list[Any] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append(_STAR)
        elif char == "?":
            out.append(_ONE)
        elif char == "$" and pattern.startswith("${", i) and "}" in pattern[i + 2:]:
            end = pattern.index("}", i + 2)
            body = pattern[i + 2:end]
            name, _, default = body.partition(",")
            name, default = name.strip(), default.strip()
            if name in _ESCAPES and not default:
                value: str | None = _ESCAPES[name]
            else:
                value = _lookup(context or {}, name)
                if value is None and len(default) >= 2 and default[0] == default[-1] == "'":
                    value = default[1:-1]
            if value is None:
                return None
            out.append(value)
            i = end + 1
            continue
        else:
            out.append(char)
        i += 1
    return out


def _lookup(context: Mapping[str, str], key: str) -> str | None:
    """The request's value of a condition key: key names are case-insensitive in IAM."""
    if key in context:
        return context[key]
    wanted = key.lower()
    return next((v for k, v in context.items() if k.lower() == wanted), None)


def _regex(tokens: Iterable[Any], star: str = ".*", one: str = ".") -> str:
    return "".join(star if t is _STAR else one if t is _ONE else re.escape(t) for t in tokens)


def _split(tokens: list[Any], parts: int) -> list[list[Any]]:
    """``tokens`` split at literal colons into at most ``parts`` components (the last keeps the rest)."""
    out: list[list[Any]] = [[]]
    for token in tokens:
        if token == ":" and len(out) < parts:
            out.append([])
        else:
            out[-1].append(token)
    return out


def string_like(pattern: str, value: str, context: Mapping[str, str] | None = None) -> bool:
    """IAM ``StringLike``: ``*`` any run of characters, ``?`` exactly one, the rest literal, case-sensitive."""
    tokens = _tokens(pattern, context)
    return tokens is not None and re.fullmatch(_regex(tokens), value, re.DOTALL) is not None


def arn_like(pattern: str, value: str, context: Mapping[str, str] | None = None) -> bool:
    """IAM ``ArnLike`` (and ``ArnEquals``): the six colon-delimited components matched one by one."""
    tokens = _tokens(pattern, context)
    if tokens is None:
        return False
    wanted = _split(tokens, 6)
    have = value.split(":", 5)
    if len(wanted) != 6 or len(have) != 6:
        return False
    return all(re.fullmatch(_regex(w), h, re.DOTALL) is not None for w, h in zip(wanted, have))


def action_matches(pattern: str, action: str) -> bool:
    """The ``Action`` element: case-insensitive, ``*`` and ``?``."""
    return re.fullmatch(_regex(_STAR if c == "*" else _ONE if c == "?" else c for c in pattern), action,
                        re.IGNORECASE | re.DOTALL) is not None


def resource_matches(pattern: str, arn: str, context: Mapping[str, str] | None = None) -> bool:
    """The ``Resource`` element: wildcards within a segment; a ``*`` ending a segment may run past colons."""
    if pattern == "*":
        return True
    tokens = _tokens(pattern, context)
    if tokens is None:
        return False
    source = []
    for i, token in enumerate(tokens):
        if token is _STAR:
            ends_segment = i + 1 == len(tokens) or tokens[i + 1] == ":"
            source.append(".*" if ends_segment else "[^:]*")
        elif token is _ONE:
            source.append("[^:]")
        else:
            source.append(re.escape(token))
    return re.fullmatch("".join(source), arn, re.DOTALL) is not None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def condition_holds(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    """Whether an IAM ``Condition`` block holds for the request ``context`` (AWS's rules).

    Every operator must hold, every key of an operator must hold, any value of a key
    may match. Key names are case-insensitive (the Condition element's page: "Condition
    key names are not case-sensitive"). A key absent from the request fails a positive operator and satisfies
    a negated one or an ``...IfExists``; ``Null`` tests presence. Set operators
    (``ForAllValues:``/``ForAnyValue:``) and other operators raise :class:`UnsupportedCondition`.
    """
    for operator, tests in conditions.items():
        if operator == "Null":
            for key, expected in tests.items():
                absent = _lookup(context, key) is None
                if any(absent != (str(v).lower() == "true") for v in _listed(expected)):
                    return False
            continue
        base = operator.removesuffix("IfExists")
        if base not in BASE_OPERATORS:
            raise UnsupportedCondition(f"condition operator {operator} is not evaluated by the emulator")
        negated = "Not" in base
        kind = base.replace("Not", "")
        for key, expected in tests.items():
            wanted = [str(v) for v in _listed(expected)]
            actual = _lookup(context, key)
            if actual is None:
                if not (operator.endswith("IfExists") or negated):
                    return False
                continue
            if kind in ("Bool", "StringEqualsIgnoreCase"):
                match = actual.lower() in [w.lower() for w in wanted]
            elif kind == "StringEquals":
                match = actual in wanted
            elif kind == "StringLike":
                match = any(string_like(w, actual, context) for w in wanted)
            else:  # ArnEquals, ArnLike: "behave identically"
                match = any(arn_like(w, actual, context) for w in wanted)
            if match == negated:
                return False
    return True


def statements(policy: str | bytes | Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The statements of a policy document (JSON text or parsed); none for no policy."""
    if not policy:
        return []
    document = json.loads(policy) if isinstance(policy, (str, bytes)) else policy
    return [dict(st) for st in _listed(document.get("Statement", []))]


def _principal_matches(element: Any, principal: Mapping[str, str], effect: str) -> bool:
    """Whether a statement's ``Principal`` names ``principal`` (``{"Service": name}`` or
    ``{"AWS": role ARN, "account": id}``). An account principal in a resource policy names
    every principal of the account for a ``Deny``; for an ``Allow`` it delegates to the
    account's IAM policies, so it grants nothing by itself."""
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        return False
    names = _listed(element.get("AWS", []))
    if "*" in names:  # the same as "Principal": "*" (the Principal element's page)
        return True
    if "Service" in principal:
        return principal["Service"] in _listed(element.get("Service", []))
    if principal.get("AWS") in names or principal.get("session") in names:
        return True
    account = principal.get("account")
    return effect == "Deny" and account is not None and (
        account in names or f"arn:aws:iam::{account}:root" in names)


def decision(policies: Iterable[str | bytes | Mapping[str, Any] | None], *, action: str, resource: str,
             context: Mapping[str, str], principal: Mapping[str, str] | None = None) -> str | None:
    """``"Deny"``, ``"Allow"`` or None (implicitly denied) for one request under ``policies``.

    A statement applies when its principal (resource policies; skipped when ``principal``
    is None, or for an identity policy's statements, which have none), action, resource
    and conditions all match. Any applicable ``Deny`` wins.
    """
    allowed = False
    for policy in policies:
        for st in statements(policy):
            effect = st.get("Effect", "")
            if principal is not None and ("Principal" in st or "NotPrincipal" in st):
                if "Principal" in st and not _principal_matches(st["Principal"], principal, effect):
                    continue
                if "NotPrincipal" in st and _principal_matches(st["NotPrincipal"], principal, effect):
                    continue
            if "Action" in st and not any(action_matches(a, action) for a in _listed(st["Action"])):
                continue
            if "NotAction" in st and any(action_matches(a, action) for a in _listed(st["NotAction"])):
                continue
            if "Resource" in st and not any(resource_matches(r, resource, context) for r in _listed(st["Resource"])):
                continue
            if "NotResource" in st and any(resource_matches(r, resource, context) for r in _listed(st["NotResource"])):
                continue
            if st.get("Condition") and not condition_holds(st["Condition"], context):
                continue
            if effect == "Deny":
                return "Deny"
            allowed = allowed or effect == "Allow"
    return "Allow" if allowed else None

