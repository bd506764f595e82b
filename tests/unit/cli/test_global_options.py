"""The global options before the command (``--profile``, ``--region``) and the one default environment."""

from __future__ import annotations

import argparse
import json
import os

import factories
import pytest

from stacks.config import StackConfig
from stacks.naming import DEFAULT_ENV
from thingpress_cli.commands import local as local_cmd
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.errors import DeploymentError
from thingpress_cli.main import command_of, main

#: the session as the deployment creates it (the ``cloud`` fixture replaces it with a shared one).
SESSION = Deployment.__dict__["session"].func


def test_profile_and_region_set_the_standard_variables(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AWS_PROFILE", "before")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(1)))
    assert command_of(["--profile", "inspect", "--region", "eu-west-1", "inspect", str(path)]) == "inspect"
    assert main(["--profile", "ops", "--region", "eu-west-1", "inspect", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accepted"] == 1
    assert (os.environ["AWS_PROFILE"], os.environ["AWS_REGION"]) == ("ops", "eu-west-1")


def test_the_deployment_session_honours_aws_profile_and_aws_region(cloud, tmp_path, monkeypatch, capsys):
    config = tmp_path / "aws-config"
    config.write_text("[profile ops]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "ops")
    monkeypatch.delenv("AWS_REGION", raising=False)
    outputs = cloud.deployment.outputs
    session = SESSION(Deployment(outputs))
    assert (session.profile_name, session.region_name) == ("ops", outputs.region)  # the deployment's own
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    session = SESSION(Deployment(outputs))
    assert session.region_name == "eu-west-1"
    assert capsys.readouterr().err == (f"note: AWS region eu-west-1 (AWS_REGION or --region), but {outputs.stack} "
                                       f"is in {outputs.region} (its outputs)\n")


def test_one_default_environment(tmp_path, monkeypatch):
    assert StackConfig.from_env({"THINGPRESS_BACKEND": "local", "THINGPRESS_MICROCHIP_SIGNERS_DIR": "none"}
                                ).suffix == DEFAULT_ENV
    assert local_cmd._env_names(argparse.Namespace(env=None)) == [DEFAULT_ENV]
    monkeypatch.delenv("THINGPRESS_ENV", raising=False)
    path = tmp_path / "terraform-outputs.json"
    path.write_text("{}")
    with pytest.raises(DeploymentError, match=f"no stack thingpress-{DEFAULT_ENV} "):
        Deployment.load(path)
