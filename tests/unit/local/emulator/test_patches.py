"""The emulator extension: IoT tag APIs, AWS-true certificate ids, no moto SQS->Lambda delivery."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import threading
import zipfile

import boto3
import pytest
from aws_fixtures import FAKE_CREDENTIALS, REGION, in_process_aws
from botocore.exceptions import ClientError


def test_tag_untag_and_list_tags_for_resource(aws):
    iot = aws("iot")
    arn = iot.create_thing_group(thingGroupName="ext-group")["thingGroupArn"]
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == []

    iot.tag_resource(resourceArn=arn, tags=[{"Key": "project", "Value": "thingpress"}, {"Key": "env", "Value": "x"}])
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": "local"}])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "env", "Value": "local"}, {"Key": "project", "Value": "thingpress"},
    ]
    iot.untag_resource(resourceArn=arn, tagKeys=["env"])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "project", "Value": "thingpress"}]


def test_tags_given_at_creation_are_listed(aws, iot_policy):
    iot = aws("iot")
    tags = [{"Key": "project", "Value": "thingpress"}]
    policy_arn = iot.create_policy(policyName="ext-policy", policyDocument=iot_policy, tags=tags)["policyArn"]
    type_arn = iot.create_thing_type(thingTypeName="ext-type", tags=tags)["thingTypeArn"]
    assert iot.list_tags_for_resource(resourceArn=policy_arn)["tags"] == tags
    assert iot.list_tags_for_resource(resourceArn=type_arn)["tags"] == tags


def test_certificate_id_is_the_sha256_of_the_der(aws, self_signed_pem):
    iot = aws("iot")
    pem, der = self_signed_pem("ext-device")
    answer = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    expected = hashlib.sha256(der).hexdigest()
    assert answer["certificateId"] == expected
    assert answer["certificateArn"].endswith(f":cert/{expected}")


def test_messages_stay_in_a_queue_with_an_event_source_mapping(aws):
    """moto would hand them to its own (Docker) Lambda and delete them; the runner must get them."""
    sqs, lam, iam = aws("sqs"), aws("lambda"), aws("iam")
    url = sqs.create_queue(QueueName="ext-esm")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    role = iam.create_role(RoleName="ext-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("h.py", "def handler(event, context):\n    return None\n")
    lam.create_function(FunctionName="ext-fn", Runtime="python3.11", Role=role, Handler="h.handler", Code={"ZipFile": code.getvalue()})
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="ext-fn", BatchSize=5)

    sqs.send_message(QueueUrl=url, MessageBody="keep me")
    received = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in received] == ["keep me"]
    assert [m["BatchSize"] for m in lam.list_event_source_mappings(FunctionName="ext-fn")["EventSourceMappings"]] == [5]


def test_other_services_pass_through_untouched(aws):
    s3 = aws("s3")
    s3.create_bucket(Bucket="ext-bucket")
    s3.put_object(Bucket="ext-bucket", Key="k", Body=b"v")
    assert s3.get_object(Bucket="ext-bucket", Key="k")["Body"].read() == b"v"


def test_a_tls_only_bucket_policy_allows_sdk_calls_and_still_denies(aws):
    """AWS calls arrive over TLS: DenyInsecureTransport must not refuse them; a plain Deny still applies."""
    s3 = aws("s3")
    s3.create_bucket(Bucket="ext-tls")
    s3.put_bucket_policy(Bucket="ext-tls", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::ext-tls", "arn:aws:s3:::ext-tls/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "DenyLocked", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::ext-tls/locked/*"},
    ]}))
    s3.put_object(Bucket="ext-tls", Key="incoming/m.json", Body=b"[]")
    assert s3.get_object(Bucket="ext-tls", Key="incoming/m.json")["Body"].read() == b"[]"
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket="ext-tls", Key="locked/m.json", Body=b"[]")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize(("conditions", "holds"), [
    ({"Bool": {"aws:SecureTransport": "false"}}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, True),
    ({"StringEquals": {"aws:SourceAccount": "123456789012"}}, False),  # key absent: positive fails
    ({"StringNotEquals": {"aws:SourceAccount": "123456789012"}}, True),  # key absent: negated holds
    ({"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:s3:::x"}}, True),
    ({"StringLike": {"aws:SecureTransport": "t*"}}, True),
])
def test_condition_holds_follows_aws_rules(conditions, holds):
    from thingpress_cli.local.emulator.iam_conditions import condition_holds
    from thingpress_cli.local.emulator.s3 import SECURE_CONTEXT

    assert condition_holds(conditions, SECURE_CONTEXT) is holds


def test_create_thing_on_an_existing_thing_answers_as_aws(aws):
    iot = aws("iot")
    iot.create_thing_type(thingTypeName="ext-type")
    first = iot.create_thing(thingName="ext-thing", thingTypeName="ext-type",
                             attributePayload={"attributes": {"manifest": "m1"}})

    same = iot.create_thing(thingName="ext-thing", thingTypeName="ext-type",
                            attributePayload={"attributes": {"manifest": "m1"}})
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_thing(thingName="ext-thing", thingTypeName="ext-type",
                         attributePayload={"attributes": {"manifest": "m2"}})

    assert same["thingId"] == first["thingId"] and same["thingArn"] == first["thingArn"]
    kept = iot.describe_thing(thingName="ext-thing")
    assert kept["attributes"] == {"manifest": "m1"} and kept["thingId"] == first["thingId"]


def test_s3_event_notifications_carry_the_object_version(aws):
    s3, sqs = aws("s3"), aws("sqs")
    s3.create_bucket(Bucket="ext-events")
    s3.put_bucket_versioning(Bucket="ext-events", VersioningConfiguration={"Status": "Enabled"})
    url = sqs.create_queue(QueueName="ext-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": arn,
         "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::ext-events"}}}]})})  # S3 may send (service_paths)
    s3.put_bucket_notification_configuration(Bucket="ext-events", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})

    put = s3.put_object(Bucket="ext-events", Key="a b.txt", Body=b"x")

    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                                 WaitTimeSeconds=2).get("Messages", [])]
    records = [r for b in bodies for r in b.get("Records", [])]
    assert [r["s3"]["object"]["versionId"] for r in records] == [put["VersionId"]]
    assert records[0]["s3"]["object"]["sequencer"]


def _blocked_in(thread: threading.Thread, code: object) -> bool:
    """Whether ``thread``'s innermost Python frame runs ``code`` (a lock wait has no frame of its own)."""
    frame = sys._current_frames().get(thread.ident)
    return frame is not None and frame.f_code is code


def test_dynamodb_requests_apply_one_at_a_time(monkeypatch):
    """A conditional transaction paused inside moto's DynamoDB backend, after it read the item and
    before it wrote: a second one with the same ``attribute_not_exists`` condition waits for it (it
    never enters the backend meanwhile), then fails its condition. Without
    ``dynamodb.one_at_a_time`` the second runs inside the backend at once and both win (the race a
    certificate delivered twice at once once won twice)."""
    from moto.dynamodb.models import DynamoDBBackend

    from thingpress_cli.local.emulator.dynamodb import one_at_a_time

    waiting_for_the_lock = one_at_a_time(lambda _handler: None).__code__
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with in_process_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(TableName="ext-tx", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        ddb.put_item(TableName="ext-tx", Item={"pk": {"S": "counter"}, "n": {"N": "0"}})

        first_read, second_entered, release = threading.Event(), threading.Event(), threading.Event()
        get_item = DynamoDBBackend.get_item

        def read_then_pause(self, table_name, keys, *args, **kwargs):
            item = get_item(self, table_name, keys, *args, **kwargs)
            if keys.get("pk") == {"S": "row"}:
                if not first_read.is_set():
                    first_read.set()
                    assert release.wait(30), "never released"
                else:
                    second_entered.set()
            return item

        monkeypatch.setattr(DynamoDBBackend, "get_item", read_then_pause)
        won: dict[str, bool] = {}

        def transact(name: str) -> None:
            try:
                ddb.transact_write_items(TransactItems=[
                    {"Put": {"TableName": "ext-tx", "Item": {"pk": {"S": "row"}},
                             "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Update": {"TableName": "ext-tx", "Key": {"pk": {"S": "counter"}}, "UpdateExpression": "ADD n :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                ])
                won[name] = True
            except ddb.exceptions.TransactionCanceledException:
                won[name] = False

        first = threading.Thread(target=transact, args=("first",))
        first.start()
        assert first_read.wait(30)
        second = threading.Thread(target=transact, args=("second",))
        second.start()
        while not (second_entered.is_set() or _blocked_in(second, waiting_for_the_lock)):
            second.join(0.001)
        inside_together = second_entered.is_set()
        release.set()
        first.join(30)
        second.join(30)

    assert not inside_together, "a second DynamoDB request ran inside moto while the first was in the middle of it"
    assert won == {"first": True, "second": False}


def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws):
    """Item-level rollback: writes made before the failing operation are undone; other items untouched."""
    ddb = aws("dynamodb")
    table = "ext-rollback"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    key = {"pk": {"S": "m"}, "sk": {"S": "#SUMMARY"}}
    ddb.put_item(TableName=table, Item={**key, "n": {"N": "1"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "m"}, "sk": {"S": "taken"}, "v": {"S": "old"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "other"}, "sk": {"S": "x"}, "v": {"S": "kept"}})

    with pytest.raises(ddb.exceptions.TransactionCanceledException) as cancelled:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "m"}, "sk": {"S": "new"}}}},
            {"Update": {"TableName": table, "Key": key, "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Delete": {"TableName": table, "Key": {"pk": {"S": "other"}, "sk": {"S": "x"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": "m"}, "sk": {"S": "taken"}, "v": {"S": "new"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ])

    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    rows = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    assert sorted((r["pk"]["S"], r["sk"]["S"], r.get("n", r.get("v"))) for r in rows) == [
        ("m", "#SUMMARY", {"N": "1"}), ("m", "taken", {"S": "old"}), ("other", "x", {"S": "kept"})]

    ddb.transact_write_items(TransactItems=[  # and a transaction that succeeds still writes everything
        {"Put": {"TableName": table, "Item": {"pk": {"S": "m"}, "sk": {"S": "new"}}}},
        {"Update": {"TableName": table, "Key": key, "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
    ])
    assert ddb.get_item(TableName=table, Key=key)["Item"]["n"] == {"N": "2"}
    assert "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "m"}, "sk": {"S": "new"}})


def test_lookups_by_key_find_things_and_certificates_among_many(aws, iot_policy, self_signed_pem):
    """describe_thing / attach calls use keyed lookups; a missing thing or certificate is still not found."""
    iot = aws("iot")
    iot.create_policy(policyName="ext-lookup", policyDocument=iot_policy)
    arns = []
    for i in range(30):
        pem, _ = self_signed_pem(f"lookup-{i}")
        arns.append(iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")["certificateArn"])
        iot.create_thing(thingName=f"lookup-{i}")
    iot.attach_thing_principal(thingName="lookup-17", principal=arns[17])
    iot.attach_policy(policyName="ext-lookup", target=arns[17])

    assert iot.describe_thing(thingName="lookup-17")["thingName"] == "lookup-17"
    assert iot.list_thing_principals(thingName="lookup-17")["principals"] == [arns[17]]
    assert [p["policyName"] for p in iot.list_attached_policies(target=arns[17])["policies"]] == ["ext-lookup"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName="lookup-")  # a prefix of existing names is not a thing
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_thing_principal(thingName="lookup-3", principal=arns[3].rsplit("/", 1)[0] + "/" + "0" * 64)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_policy(policyName="ext-lookup", target=arns[3].replace(":us-east-1:", ":eu-west-1:"))  # same id, other ARN


class ObservedLock:
    """An ``RLock`` that reports (sets ``waiting``) when a thread has to wait for it."""

    def __init__(self, waiting: threading.Event) -> None:
        self._lock = threading.RLock()
        self._waiting = waiting
        self._is_owned = self._lock._is_owned  # what threading.Condition needs of its lock
        self._release_save = self._lock._release_save
        self._acquire_restore = self._lock._acquire_restore

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        self._waiting.set()
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()


class PauseAtFirstUpdate(set):
    """A queue's ``deleted_messages``: the first ``update`` (a delete that found its message,
    midway through copying the message list) stops until ``resume`` is set."""

    def __init__(self, reached: threading.Event, resume: threading.Event) -> None:
        super().__init__()
        self._reached, self._resume, self._paused = reached, resume, False

    def update(self, *others) -> None:
        if not self._paused:
            self._paused = True
            self._reached.set()
            assert self._resume.wait(10), "the test never resumed the paused delete"
        super().update(*others)


class Interleaving:
    """Runs SQS backend calls in threads, one step at a time, on one instrumented queue.

    ``pause_first_delete`` starts a delete and returns once it is paused mid-copy;
    ``run`` starts a call and returns once it has finished or waits for the queue's
    lock (no sleeping: both are signalled); ``finish`` resumes the paused delete and
    joins every thread.
    """

    def __init__(self, queue) -> None:
        self.settled = threading.Event()
        self.paused, self.resume = threading.Event(), threading.Event()
        queue._messages_lock = threading.Condition(ObservedLock(self.settled))
        queue.deleted_messages = PauseAtFirstUpdate(self.paused, self.resume)
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def _start(self, call) -> None:
        def body() -> None:
            try:
                call()
            except BaseException as error:  # noqa: BLE001 - reported by finish()
                self.errors.append(error)
            finally:
                self.settled.set()

        self.settled.clear()
        thread = threading.Thread(target=body, daemon=True)
        self.threads.append(thread)
        thread.start()

    def pause_first_delete(self, call) -> None:
        self._start(call)
        assert self.paused.wait(10), "the delete never reached its copy of the message list"

    def run(self, call) -> None:
        self._start(call)
        assert self.settled.wait(10), "the call neither finished nor waited for the queue's lock"

    def finish(self) -> None:
        self.resume.set()
        for thread in self.threads:
            thread.join(10)
        assert not any(t.is_alive() for t in self.threads) and not self.errors, self.errors


@pytest.fixture
def sqs_backend(monkeypatch: pytest.MonkeyPatch):
    """An in-process moto SQS backend with the emulator's queue locks (undone afterwards)."""
    from moto import mock_aws
    from moto.sqs.models import Queue, SQSBackend, sqs_backends

    from thingpress_cli.local.emulator.sqs import lock_sqs_queues

    monkeypatch.setattr(Queue, "delete_message", Queue.delete_message)  # restored at teardown
    monkeypatch.setattr(SQSBackend, "receive_message", SQSBackend.receive_message)
    lock_sqs_queues()
    with mock_aws():
        yield sqs_backends["123456789012"]["us-east-1"]


def bodies(queue) -> list[str]:
    return sorted(m.body for m in queue._messages)


def test_a_send_between_two_overlapping_deletes_is_kept(sqs_backend):
    """Delete 1 copies the list; delete 2 assigns its copy; a send lands on it; delete 1 assigns its own.

    Stock moto: the sent m4 vanishes and the deleted m2 comes back (['m2', 'm3']).
    """
    queue = sqs_backend.create_queue("race-deletes")
    for body in ("m1", "m2", "m3"):
        sqs_backend.send_message("race-deletes", body)
    handles = {m.body: m.receipt_handle for m in sqs_backend.receive_message("race-deletes", 10, 0, 300)}
    steps = Interleaving(queue)

    steps.pause_first_delete(lambda: sqs_backend.delete_message("race-deletes", handles["m1"]))
    steps.run(lambda: sqs_backend.delete_message("race-deletes", handles["m2"]))
    steps.run(lambda: sqs_backend.send_message("race-deletes", "m4"))
    steps.finish()

    assert bodies(queue) == ["m3", "m4"]


def test_a_delete_during_a_move_to_the_dead_letter_queue_skips_nothing(sqs_backend):
    """A receive moves ``a`` to the DLQ while a delete of ``d`` is copying the list [a, d, x, y].

    Stock moto removes ``a`` in place mid-copy: the copy skips ``x`` (lost) and keeps ``a``
    (now in both queues): source ['a', 'y'], DLQ ['a'].
    """
    dlq = sqs_backend.create_queue("race-dlq")
    queue = sqs_backend.create_queue("race-source", RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq.queue_arn, "maxReceiveCount": 1}))
    for body in ("a", "d", "x", "y"):
        sqs_backend.send_message("race-source", body)
    first = {m.body: m.receipt_handle for m in sqs_backend.receive_message("race-source", 2, 0, 0)}
    assert sorted(first) == ["a", "d"]  # received once each and still visible (timeout 0)...
    sqs_backend.change_message_visibility("race-source", first["d"], 300)  # ...but d is being processed
    steps = Interleaving(queue)

    steps.pause_first_delete(lambda: sqs_backend.delete_message("race-source", first["d"]))
    steps.run(lambda: sqs_backend.receive_message("race-source", 10, 0, 300))  # moves a (received once) to the DLQ
    steps.finish()

    assert (bodies(queue), bodies(dlq)) == (["x", "y"], ["a"])


def test_a_function_whose_create_answer_was_lost_is_deleted_from_the_emulator(aws, emulator_url):
    """``thingpress local up``'s recovery (``lost_creates.forget``): the function goes; a name not there is no error."""
    from thingpress_cli.local import lost_creates

    lam, iam = aws("lambda"), aws("iam")
    role = iam.create_role(RoleName="lost-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("h.py", "def handler(event, context):\n    return None\n")
    lam.create_function(FunctionName="lost-fn", Runtime="python3.11", Role=role, Handler="h.handler",
                        Code={"ZipFile": code.getvalue()})

    lost_creates.forget(emulator_url, ["lost-fn", "never-made"])

    assert "lost-fn" not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]


def test_a_function_keeps_its_logging_configuration_as_lambda_answers_it(aws):
    """moto dropped ``LoggingConfig``: Terraform read every function's ``logging_config`` as missing and updated all
    of them on every deploy. Lambda answers the one given, else Text into /aws/lambda/<name>; JSON sets both levels
    to INFO unless given."""
    lam, iam = aws("lambda"), aws("iam")
    role = iam.create_role(RoleName="logging-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("h.py", "def handler(event, context):\n    return None\n")
    common = {"Runtime": "python3.11", "Role": role, "Handler": "h.handler", "Code": {"ZipFile": code.getvalue()}}

    created = lam.create_function(FunctionName="json-logs", **common,
                                  LoggingConfig={"LogFormat": "JSON", "LogGroup": "/thingpress/json-logs"})
    plain = lam.create_function(FunctionName="plain-logs", **common)

    as_json = {"LogFormat": "JSON", "LogGroup": "/thingpress/json-logs", "ApplicationLogLevel": "INFO",
               "SystemLogLevel": "INFO"}
    assert created["LoggingConfig"] == as_json
    assert lam.get_function(FunctionName="json-logs")["Configuration"]["LoggingConfig"] == as_json
    assert lam.get_function_configuration(FunctionName="plain-logs")["LoggingConfig"] == \
        plain["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/plain-logs"}

    lam.update_function_configuration(FunctionName="json-logs", LoggingConfig={"LogFormat": "Text"})
    assert lam.get_function(FunctionName="json-logs")["Configuration"]["LoggingConfig"] == \
        {"LogFormat": "Text", "LogGroup": "/thingpress/json-logs"}  # the group kept, the JSON levels gone


def test_a_second_mapping_of_a_queue_to_one_function_is_refused_as_lambda_refuses_it(aws):
    """A deploy whose answer to CreateEventSourceMapping was lost sent it again (seen in a packet capture of
    ``local up``); moto made a second mapping that Terraform never knew. Lambda refuses it, naming the first."""
    lam, iam, sqs = aws("lambda"), aws("iam"), aws("sqs")
    role = iam.create_role(RoleName="mapping-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("h.py", "def handler(event, context):\n    return None\n")
    for name in ("mapped-fn", "other-fn"):
        lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="h.handler",
                            Code={"ZipFile": code.getvalue()})
    url = sqs.create_queue(QueueName="mapped-queue")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    first = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName="mapped-fn", BatchSize=1)["UUID"]

    with pytest.raises(ClientError) as again:
        lam.create_event_source_mapping(EventSourceArn=queue, FunctionName="mapped-fn", BatchSize=1)

    error = again.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("ResourceConflictException", 409)
    assert error["Error"]["Message"] == (f'An event source mapping with SQS arn (" {queue} ") and function '
                                         f'(" mapped-fn ") already exists. Please update or delete the existing '
                                         f"mapping with UUID {first}")
    mine = [m["UUID"] for m in lam.list_event_source_mappings(FunctionName="mapped-fn")["EventSourceMappings"]]
    assert mine == [first]
    # the same queue to another function is another mapping; once the first is gone, it can be made again
    lam.create_event_source_mapping(EventSourceArn=queue, FunctionName="other-fn", BatchSize=1)
    lam.delete_event_source_mapping(UUID=first)
    assert lam.create_event_source_mapping(EventSourceArn=queue, FunctionName="mapped-fn", BatchSize=1)["UUID"] != first


def test_waitress_says_when_a_client_left_mid_request_and_not_its_queue_depth():
    import logging

    from thingpress_cli.local.emulator.server import log_connection_events

    stream = io.StringIO()
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
             for name in ("waitress", "waitress.queue")}
    try:
        log_connection_events(stream)
        logging.getLogger("waitress").info("Client disconnected while serving /2015-03-31/functions")
        logging.getLogger("waitress.queue").warning("Task queue depth is 3")
    finally:
        for name, (level, handlers, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.handlers = handlers
            logger.propagate = propagate
    assert stream.getvalue().endswith(" waitress INFO Client disconnected while serving /2015-03-31/functions\n")
    assert "queue depth" not in stream.getvalue()
