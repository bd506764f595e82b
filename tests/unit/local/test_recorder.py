"""The call recorder the runner's workers install: one JSON line per AWS call, parameters trimmed."""

from __future__ import annotations

import json
import os

import boto3
import botocore.handlers
import pytest
from botocore.stub import Stubber

from thingpress_cli.local import bootstrap, recorder


def test_every_call_of_a_new_session_is_recorded_with_its_final_parameters(tmp_path, monkeypatch) -> None:
    path = tmp_path / "calls" / "fn.jsonl"
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", list(botocore.handlers.BUILTIN_HANDLERS))
    monkeypatch.setenv(recorder.CALLS_ENV, str(path))

    bootstrap.install_recorder()  # what the worker does before it imports the handler

    assert recorder.CALLS_ENV not in os.environ  # the function does not see it
    sqs = boto3.session.Session().client("sqs", region_name="us-east-1", aws_access_key_id="x",
                                         aws_secret_access_key="x")
    with Stubber(sqs) as stub:
        stub.add_response("send_message_batch", {"Successful": [], "Failed": []})
        sqs.send_message_batch(QueueUrl="https://sqs.us-east-1.amazonaws.com/123456789012/q",
                               Entries=[{"Id": "1", "MessageBody": "x" * 1000}])
    (line,) = path.read_text().splitlines()
    assert json.loads(line) == {
        "service": "sqs", "operation": "SendMessageBatch", "region": "us-east-1",
        "params": {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
                   "Entries": [{"Id": "1", "MessageBody": "x" * recorder.KEEP_CHARS}]},
    }


def test_no_file_no_recording(monkeypatch) -> None:
    monkeypatch.delenv(recorder.CALLS_ENV, raising=False)
    before = list(botocore.handlers.BUILTIN_HANDLERS)
    bootstrap.install_recorder()
    assert botocore.handlers.BUILTIN_HANDLERS == before


@pytest.mark.parametrize(("value", "expected"), [
    (b"\x00" * 7, "<7 bytes>"), ({"k": ["a" * 200]}, {"k": ["a" * recorder.KEEP_CHARS]}), (3, 3), (None, None),
])
def test_trimmed(value, expected) -> None:
    assert recorder.trimmed(value) == expected


def test_the_runner_puts_the_calls_next_to_its_logs(tmp_path) -> None:
    assert recorder.calls_file(tmp_path / "logs", "fn") == str(tmp_path / "calls" / "fn.jsonl")
    assert recorder.enabled({}) and not recorder.enabled({recorder.SWITCH_ENV: "0"})


def test_each_line_is_on_disk_at_once_and_a_cleared_folder_is_made_again(tmp_path) -> None:
    """The recorder keeps its file open: a line is written when its call is made (a worker killed at its
    timeout loses none), and after ``local up`` clears the folder the next line opens a new file there."""
    import shutil
    from types import SimpleNamespace

    path = tmp_path / "calls" / "fn.jsonl"
    record = recorder.Recorder(str(path))
    model = SimpleNamespace(name="GetItem", service_model=SimpleNamespace(signing_name="dynamodb", endpoint_prefix="x"))
    record(model, {}, context={"thingpress_params": {"TableName": "t1"}})
    assert [json.loads(line)["params"] for line in path.read_text().splitlines()] == [{"TableName": "t1"}]

    shutil.rmtree(path.parent)
    record(model, {}, context={"thingpress_params": {"TableName": "t2"}})
    record(model, {}, context={"thingpress_params": {"TableName": "t3"}})
    assert [json.loads(line)["params"] for line in path.read_text().splitlines()] == [
        {"TableName": "t2"}, {"TableName": "t3"}]
