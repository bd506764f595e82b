"""The provider names each thing with THINGPRESS_THING_NAME_TEMPLATE (in-process AWS)."""

from __future__ import annotations

import pytest
from aws_fixtures import FakeContext, drain_queue, put_and_event
from events import sqs_event
from cryptography import x509
from provider_helpers import generated_manifest

from thingpress import messages
from thingpress.settings import SettingsError

KEY = "generated/named.txt"


def test_the_template_names_every_thing(aws, pems):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:3]))

    aws.provider(thing_prefix="pr7-", thing_name_template="{prefix}{vendor}-{name}-{serial}").handle(
        sqs_event(event), FakeContext())

    sent = sorted((messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)),
                  key=lambda m: m.position)
    serials = [format(x509.load_pem_x509_certificate(p).serial_number, "x") for p in pems[:3]]
    assert [m.thing_name for m in sent] == [f"pr7-generated-Device-{i}-{serials[i]}" for i in range(3)]


def test_a_template_the_synth_would_refuse_stops_the_function_naming_the_setting(aws, pems):
    event = put_and_event(aws.s3, aws.bucket, KEY, generated_manifest(pems[:1]))
    provider = aws.provider(thing_name_template="{vendor}")
    with pytest.raises(SettingsError, match="^THINGPRESS_THING_NAME_TEMPLATE: '{vendor}' names every device alike"):
        provider.thing_names  # noqa: B018
    assert provider.handle(sqs_event(event), FakeContext())["batchItemFailures"]  # retried, nothing sent
    assert drain_queue(aws.sqs, aws.import_queue) == []
