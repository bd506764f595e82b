"""The guard over moto: the pinned version, every patched attribute, one set of behaviour patches.

An upgrade of moto must fail loudly (``make install`` runs the check, and so does
every process that applies the patches), and the in-process fixtures must answer
with the emulator's behaviour patches, not a second copy of them.
"""

from __future__ import annotations

import boto3
import moto
import pytest
from aws_fixtures import FAKE_CREDENTIALS, REGION, in_process_aws
from moto.dynamodb.responses import DynamoHandler
from moto.iot.models import IoTBackend
from moto.sqs.models import Queue

from thingpress_cli.local import moto_ext


def test_installed_moto_is_the_pinned_one_and_every_patched_attribute_exists():
    assert moto_ext.pinned_moto_version() == moto.__version__
    moto_ext.check_moto()


def test_another_moto_version_fails_loudly():
    with pytest.raises(moto_ext.MotoMismatch, match=r"moto 5\.2\.5 is installed; .* moto 9\.9\.9 \(the Pipfile pin\)"):
        moto_ext.check_moto(pinned="9.9.9")


def test_a_patched_attribute_that_moved_fails_loudly():
    with pytest.raises(moto_ext.MotoMismatch, match=r"moto\.sqs\.models\.Queue\.renamed_in_a_later_moto"):
        moto_ext.check_moto(attributes=[("moto.sqs.models", "Queue.renamed_in_a_later_moto")], instance_attributes=())
    with pytest.raises(moto_ext.MotoMismatch, match=r"moto\.sqs\.models\.Queue\(\)\.gone"):
        moto_ext.check_moto(attributes=(), instance_attributes=[("moto.sqs.models", "Queue", "gone")])


def test_the_pin_is_read_from_the_pipfile(tmp_path):
    pipfile = tmp_path / "Pipfile"
    pipfile.write_text('[packages]\nboto3 = "==1"\n\n[dev-packages]\nmoto = {version = "==1.2.3", extras = ["server"]}\n')
    assert moto_ext.pinned_moto_version(pipfile) == "1.2.3"


def test_behaviour_patches_apply_once():
    moto_ext.apply_behaviour_patches()
    patched = (Queue.delete_message, IoTBackend.create_thing, DynamoHandler.call_action)
    moto_ext.apply_behaviour_patches()
    assert (Queue.delete_message, IoTBackend.create_thing, DynamoHandler.call_action) == patched


def test_in_process_aws_answers_with_the_emulators_behaviour_patches(monkeypatch):
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with in_process_aws():
        iot = boto3.client("iot", region_name=REGION)
        first = iot.create_thing(thingName="guard-thing", attributePayload={"attributes": {"manifest": "m1"}})
        same = iot.create_thing(thingName="guard-thing", attributePayload={"attributes": {"manifest": "m1"}})
        with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
            iot.create_thing(thingName="guard-thing", attributePayload={"attributes": {"manifest": "m2"}})
        assert same["thingId"] == first["thingId"]
        assert iot.describe_thing(thingName="guard-thing")["attributes"] == {"manifest": "m1"}
