"""load_outputs reads the nested file `cdktf deploy --outputs-file` writes, checks the contract."""

from __future__ import annotations

import json

import pytest

from stacks import outputs
from stacks.outputs import OutputsError, load_outputs
from thingpress_cli.core.deployment import Deployment


def fake_outputs(target: str = "local", suffix: str = "pr42") -> dict:
    values = {k: f"value-of-{k}" for k in outputs.contract_keys(target)}
    values.update({outputs.PROJECT_KEY: "thingpress", outputs.ENVIRONMENT: suffix, outputs.TARGET: target})
    return {f"thingpress-{suffix}": values, "someone-elses-stack": {"x": 1}}


def test_loads_the_stack_of_the_suffix(tmp_path):
    path = tmp_path / "terraform-outputs.json"
    path.write_text(json.dumps(fake_outputs()))
    got = load_outputs(path, "pr42")
    assert got.stack == "thingpress-pr42" and got.target == "local"
    assert got.endpoint_url == "value-of-endpoint_url"
    assert got.vendors["infineon"].manifest_queue_url == "value-of-infineon_manifest_queue_url"
    assert set(got.vendors) == {"microchip", "infineon", "espressif", "generated"}


def test_wrong_suffix_names_the_stacks_found(tmp_path):
    path = tmp_path / "o.json"
    path.write_text(json.dumps(fake_outputs()))
    with pytest.raises(OutputsError, match=r"no stack thingpress-dev .*stacks found: someone-elses-stack, thingpress-pr42"):
        load_outputs(path, "dev")


def test_missing_keys_are_named(tmp_path):
    data = fake_outputs(target="aws")
    del data["thingpress-pr42"][outputs.AUDIT_TABLE_ARN], data["thingpress-pr42"][outputs.LAYER_ARN]
    path = tmp_path / "o.json"
    path.write_text(json.dumps(data))
    with pytest.raises(OutputsError, match="outputs lack audit_table_arn, layer_arn"):
        load_outputs(path, "pr42")


def test_another_projects_outputs_are_refused(tmp_path):
    data = fake_outputs()
    data["thingpress-pr42"][outputs.PROJECT_KEY] = "other"
    path = tmp_path / "o.json"
    path.write_text(json.dumps(data))
    with pytest.raises(OutputsError, match="another project's outputs file"):
        load_outputs(path, "pr42")


def test_flat_terraform_output_json_gets_a_hint(tmp_path):
    path = tmp_path / "o.json"
    path.write_text(json.dumps(fake_outputs()["thingpress-pr42"]))
    with pytest.raises(OutputsError, match="flat `terraform output` JSON"):
        load_outputs(path, "pr42")


def test_missing_file_says_how_to_make_it(tmp_path):
    with pytest.raises(OutputsError, match="cdktf deploy thingpress-dev --outputs-file"):
        load_outputs(tmp_path / "terraform-outputs.json", "dev")


def test_thing_names_come_from_the_outputs_template_and_prefix(tmp_path):
    data = fake_outputs()
    data["thingpress-pr42"].update({outputs.THING_NAME_PREFIX: "pr42-",
                                    outputs.THING_NAME_TEMPLATE: "{prefix}{vendor}-{name}"})
    path = tmp_path / "o.json"
    path.write_text(json.dumps(data))
    names = Deployment.load(path, "pr42").thing_names()
    assert names.render(vendor="generated", name="Device-0", fingerprint="ab" * 32) == "pr42-generated-Device-0"
