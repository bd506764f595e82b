"""The guard over moto: the pinned version, every patched attribute with its signature, one patch set.

An upgrade of moto must fail loudly (``make install`` runs the check, and so does
every process that applies the patches), and the in-process fixtures must answer
with the emulator's patches, not a second copy of them.
"""

from __future__ import annotations

import boto3
import moto
import pytest
from aws_fixtures import FAKE_CREDENTIALS, REGION, in_process_aws
from moto.dynamodb.responses import DynamoHandler
from moto.iot.models import IoTBackend
from moto.sqs.models import Queue

from thingpress_cli.local.emulator import guard, patches
from thingpress_cli.local.emulator.guard import MotoMismatch, Patched


def test_installed_moto_is_the_pinned_one_and_every_patched_attribute_exists():
    assert guard.pinned_moto_version() == moto.__version__
    guard.check(patches.PATCHED)


def test_another_moto_version_fails_loudly():
    with pytest.raises(MotoMismatch, match=r"moto 5\.2\.5 is installed; .* moto 9\.9\.9 \(the Pipfile pin\)"):
        guard.check(patches.PATCHED, pinned="9.9.9")


def test_a_patched_attribute_that_moved_fails_loudly():
    with pytest.raises(MotoMismatch, match=r"moto\.sqs\.models\.Queue\.renamed_in_a_later_moto is missing"):
        guard.check([Patched("moto.sqs.models", "Queue.renamed_in_a_later_moto")])
    with pytest.raises(MotoMismatch, match=r"moto\.sqs\.models\.Queue\(\)\.gone is missing"):
        guard.check([Patched("moto.sqs.models", "Queue.gone", instance=True)])


def test_a_patched_function_whose_parameters_changed_fails_loudly_naming_it():
    changed = Patched("moto.sqs.models", "Queue.delete_message", ("self", "receipt_handle", "added_later"))
    with pytest.raises(MotoMismatch, match=r"moto\.sqs\.models\.Queue\.delete_message takes \(self, receipt_handle\), "
                                           r"the patch expects \(self, receipt_handle, added_later\) "
                                           r"\(patched by thingpress_cli\.local\.emulator\.sqs\)"):
        guard.check({changed: ("thingpress_cli.local.emulator.sqs",)})


def test_the_patch_set_knows_which_modules_patch_each_attribute():
    create_thing = Patched("moto.iot.models", "IoTBackend.create_thing",
                           ("self", "thing_name", "thing_type_name", "attribute_payload", "billing_group_name"))
    assert patches.PATCHED[create_thing] == ("thingpress_cli.local.emulator.iot", "thingpress_cli.local.emulator.iot_rules")


def test_every_patch_records_the_parameters_of_what_it_calls():
    functions = [p for p in patches.PATCHED if p.params is not None]
    assert len(functions) > 30 and all(guard.problem(p) is None for p in functions)


def test_the_pin_is_read_from_the_pipfile(tmp_path):
    pipfile = tmp_path / "Pipfile"
    pipfile.write_text('[packages]\nboto3 = "==1"\n\n[dev-packages]\nmoto = {version = "==1.2.3", extras = ["server"]}\n')
    assert guard.pinned_moto_version(pipfile) == "1.2.3"


def test_the_patches_apply_once():
    patches.apply()
    patched = (Queue.delete_message, IoTBackend.create_thing, DynamoHandler.call_action)
    patches.apply()
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
