"""Fuzzing the import message schema: anything decodes or is refused with a reason."""

from __future__ import annotations

import json

import budget
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thingpress.messages import SCHEMA, ImportMessage, MessageError, decode

EXAMPLES = budget.examples(400)
VALID = ImportMessage(manifest_id="generated-0123456789abcdef0123", vendor="generated", position=1,
                      thing_name="Device-0", fingerprint="a" * 64,
                      certificate_pem="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                      queued_at="2026-11-21T01:02:03Z")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _decodes_or_refuses(body) -> None:
    try:
        message = decode(body)
    except MessageError as exc:
        assert exc.reason and isinstance(exc.reason, str)
    else:
        assert isinstance(message, ImportMessage)
        assert decode(message.encode()) == message


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes(body):
    _decodes_or_refuses(body)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json(value):
    _decodes_or_refuses(json.dumps(value))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(json.loads(VALID.encode()))), json_values)
def test_one_field_mutated(field, value):
    body = json.loads(VALID.encode())
    body[field] = value
    _decodes_or_refuses(json.dumps(body))


def test_valid_round_trip_and_exact_reasons():
    assert decode(VALID.encode()) == VALID
    cases = {
        "[]": "message body is not a JSON object",
        "{'a': 1}": "message body is not JSON",
        json.dumps({"schema": "x"}): f"unsupported message schema 'x', expected {SCHEMA!r}",
        json.dumps({"schema": SCHEMA}): "message lacks field(s): certificate_pem, fingerprint, manifest_id, "
                                        "position, queued_at, thing_name, vendor",
        json.dumps({**json.loads(VALID.encode()), "position": True}): "message field 'position' must be int, got bool",
        json.dumps({**json.loads(VALID.encode()), "extra": 1}): "message has unknown field(s): extra",
        json.dumps({**json.loads(VALID.encode()), "fingerprint": "A" * 64}):
            "message field 'fingerprint' must be 64 lowercase hex characters",
    }
    for body, reason in cases.items():
        try:
            decode(body)
        except MessageError as exc:
            assert exc.reason.startswith(reason), (body, exc.reason)
        else:
            raise AssertionError(f"accepted {body}")
