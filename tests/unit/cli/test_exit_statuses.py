"""``thingpress``'s exit statuses: one handler (``core.errors.report``) for every command.

0 ok, 1 a finding, 2 usage, 3 configuration, 4 an AWS error, 130 Ctrl-C; the error is one
line on stderr (never a traceback, unless ``--debug``), or under ``--json`` one JSON document
on stdout and nothing else.
"""

from __future__ import annotations

import json

import factories
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from thingpress_cli.core.deployment import Deployment
from thingpress_cli.main import main

DENIED = {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(1)))
    return str(path)


def commands(manifest: str) -> list[list[str]]:
    """Every command that talks to the deployment, as the operator types it."""
    return [["status"], ["status", "generated-1"], ["report", "generated-1"], ["plan", manifest],
            ["reconcile", "--all"], ["redrive"], ["rollback", "generated-1"], ["teardown"], ["upload", manifest]]


def refusing(monkeypatch, error: Exception) -> None:
    def client(self, service):
        raise error
    monkeypatch.setattr(Deployment, "client", client)


@pytest.mark.parametrize("index", range(9))
def test_an_aws_error_exits_4_with_one_line_and_no_traceback(cloud, manifest, monkeypatch, capsys, index):
    argv = commands(manifest)[index]
    refusing(monkeypatch, ClientError(DENIED, "DescribeThing"))
    assert main(argv) == 4
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    # teardown says where it stopped and how to resume (more lines); the others, the error in one line
    assert err == (f"thingpress {argv[0]}: An error occurred (AccessDeniedException) when calling the "
                   "DescribeThing operation: not authorized\n") or (
        argv[0] == "teardown" and err.startswith("thingpress teardown: stopped: DescribeThing refused: "
                                                 "AccessDeniedException: not authorized\n"))


@pytest.mark.parametrize("index", range(9))
def test_under_json_an_error_is_the_one_json_document(cloud, manifest, monkeypatch, capsys, index):
    argv = commands(manifest)[index]
    refusing(monkeypatch, EndpointConnectionError(endpoint_url="https://iot.example"))
    fmt = ["--format", "json"] if argv[0] == "report" else ["--json"]
    assert main(argv + fmt) == 4
    out, err = capsys.readouterr()
    assert err == ""
    error = json.loads(out)["error"]
    assert error["code"] == 4 and 'Could not connect to the endpoint URL: "https://iot.example"' in error["message"]
    assert error["type"] == ("ServiceError" if argv[0] == "teardown" else "EndpointConnectionError")


def test_a_failed_managed_upload_exits_4(cloud, manifest, capsys):
    cloud.s3.delete_bucket(Bucket=cloud.deployment.outputs.bucket_name)
    assert main(["upload", manifest]) == 4
    err = capsys.readouterr().err
    assert err.startswith("thingpress upload: Failed to upload ") and "NoSuchBucket" in err and "Traceback" not in err


def test_debug_adds_the_traceback(cloud, monkeypatch, capsys):
    refusing(monkeypatch, ClientError(DENIED, "Scan"))
    assert main(["--debug", "status"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):\n") and err.endswith(
        "thingpress status: An error occurred (AccessDeniedException) when calling the Scan operation: "
        "not authorized\n")


def test_configuration_usage_and_interrupt(cloud, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("THINGPRESS_OUTPUTS", str(tmp_path / "none.json"))
    assert main(["status"]) == 3
    assert capsys.readouterr().err.startswith(f"thingpress status: {tmp_path / 'none.json'}: no outputs file")
    assert main(["status", "--env", "nosuch", "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["error"]["code"] == 3
    assert main(["status", "--no-such-option"]) == 2
    assert capsys.readouterr().err.endswith("thingpress status: unrecognized arguments: --no-such-option\n")
    assert main(["status", "--no-such-option", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"] == {
        "code": 2, "type": "UsageError", "message": "unrecognized arguments: --no-such-option"}


def test_ctrl_c_exits_130(cloud, monkeypatch, capsys):
    def interrupted(self):
        raise KeyboardInterrupt
    monkeypatch.setattr(Deployment, "manifest_summaries", interrupted)
    assert main(["status"]) == 130
    assert capsys.readouterr().err == "thingpress status: interrupted\n"


def test_a_bug_keeps_its_traceback(cloud, monkeypatch):
    def broken(self):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(Deployment, "manifest_summaries", broken)
    with pytest.raises(ZeroDivisionError):
        main(["status"])


def test_help_lists_the_exit_statuses_and_the_global_options(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    statuses = out[out.index("\nexit status:\n"):]
    assert [line.split()[0] for line in statuses.splitlines()[2:8]] == ["0", "1", "2", "3", "4", "130"]
    for option in ("--version", "--debug", "--profile NAME", "--region REGION", "AWS_PROFILE", "AWS_REGION"):
        assert option in out


def test_version_is_the_package_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"thingpress {version('thingpress')}\n"
