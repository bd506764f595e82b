"""A ``CreateFunction`` answer lost in a deploy (issue 22, finding 11): the refusal that follows is acted on at once.

The emulator remembers the functions whose create it refused as existing
(:mod:`thingpress_cli.local.emulator.refused_creates`); ``thingpress local up``'s
:class:`~thingpress_cli.local.lost_creates.Watch` deletes the deploying stack's, each once,
so the provider's next retry creates it. The lost answer is injected exactly: the test
sends the create and drops its answer, then sends it again, as the SDK did.
"""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest
from botocore.config import Config

from thingpress_cli.local import deployments, lost_creates
from thingpress_cli.local.emulator import process as emulator

ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()


@pytest.fixture
def create(aws):
    """``create(name)``: one CreateFunction call, as the provider sends it (one attempt, no SDK retry)."""
    lam = aws("lambda", config=ONE_ATTEMPT)
    role = aws("iam").create_role(RoleName=f"lost-creates-{time.monotonic_ns()}", AssumeRolePolicyDocument=TRUST)
    code = _zip()

    def call(name: str) -> dict:
        return lam.create_function(FunctionName=name, Runtime="python3.11", Role=role["Role"]["Arn"],
                                   Handler="handler.lambda_handler", Code={"ZipFile": code})

    call.client = lam  # type: ignore[attr-defined]
    return call


def test_the_emulator_answers_a_second_create_409_and_remembers_the_name(create, emulator_url):
    before = emulator.refused_creates_report(emulator_url)
    create("lost-creates-remembered")  # a create answered: not a refusal

    with pytest.raises(create.client.exceptions.ResourceConflictException, match="already exist"):
        create("lost-creates-remembered")

    assert emulator.refused_creates_report(emulator_url) == [*before, "lost-creates-remembered"]


def test_the_stack_s_refused_function_is_deleted_once_and_the_next_create_succeeds(create, emulator_url):
    mine, theirs = deployments.stack_functions("lostone")[0], "lost-creates-not-the-stack-s"
    create(theirs)
    with pytest.raises(create.client.exceptions.ResourceConflictException):
        create(theirs)  # refused before the deploy began: not this deploy's
    warnings: list[str] = []
    watch = lost_creates.Watch(emulator_url, deployments.stack_functions("lostone"), warnings.append)
    assert watch.begin()  # the deploy begins (what ``with`` does, without the thread: the test calls check)

    create(mine)  # applied; its answer is dropped here, as the provider's was
    with pytest.raises(create.client.exceptions.ResourceConflictException):
        create(mine)  # the SDK sends it again
    with pytest.raises(create.client.exceptions.ResourceConflictException):
        create(theirs)  # refused during the deploy, but not one of the stack's functions

    assert watch.check() == [mine]
    assert warnings == [f"the emulator created {mine}, but Terraform sent the CreateFunction again (its answer was "
                        "lost) and was refused as existing; deleted from the emulator, so that the provider's next "
                        "retry creates it"]
    assert create(mine)["FunctionName"] == mine  # the provider's next retry
    assert create.client.get_function(FunctionName=theirs)["Configuration"]["FunctionName"] == theirs

    # a refusal the emulator answered before the deletion, read after it: the function Terraform now holds stays
    with pytest.raises(create.client.exceptions.ResourceConflictException):
        create(mine)
    assert watch.check() == []
    assert create.client.get_function(FunctionName=mine)["Configuration"]["FunctionName"] == mine
    assert watch.deleted == [mine] and len(warnings) == 1


def test_while_a_deploy_runs_the_provider_s_retry_creates_the_function(create, emulator_url):
    """The watch's thread, as ``deploy`` runs it: the provider's retry loop ends with the function created."""
    name = deployments.stack_functions("losttwo")[-1]
    warnings: list[str] = []
    with lost_creates.Watch(emulator_url, deployments.stack_functions("losttwo"), warnings.append, interval=0.05) as watch:
        create(name)  # answer lost
        refusals, deadline = 0, time.monotonic() + 10
        while True:  # the provider retries ResourceConflictException (here every 0.05 s, for at most 10 s)
            try:
                created = create(name)
                break
            except create.client.exceptions.ResourceConflictException:
                refusals += 1
                assert time.monotonic() < deadline, f"still refused after {refusals} retries: the watch deleted nothing"
                time.sleep(0.05)

    assert created["FunctionName"] == name and refusals >= 1
    assert watch.deleted == [name] and len(warnings) == 1


def test_without_the_emulator_s_word_the_watch_does_nothing_and_says_so(monkeypatch):
    def gone(url):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(emulator, "refused_creates_report", gone)
    warnings: list[str] = []
    with lost_creates.Watch("http://127.0.0.1:9", ["f"], warnings.append, interval=0.01) as watch:
        time.sleep(0.05)
    assert watch.deleted == []
    assert warnings == ["lost creates not watched: the emulator did not say which creates it refused "
                        "(connection refused)"]


def test_a_lost_mapping_is_deleted_by_its_uuid_and_one_not_there_is_no_error(aws, create, emulator_url):
    name = deployments.stack_functions("lostmap")[0]
    create(name)
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="lost-mapping")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    uuid = create.client.create_event_source_mapping(EventSourceArn=queue, FunctionName=name)["UUID"]

    lost_creates.forget_mappings(emulator_url, [uuid, "00000000-0000-4000-8000-000000000000"])

    assert create.client.list_event_source_mappings(FunctionName=name)["EventSourceMappings"] == []
    assert create.client.create_event_source_mapping(EventSourceArn=queue, FunctionName=name)["UUID"] != uuid
