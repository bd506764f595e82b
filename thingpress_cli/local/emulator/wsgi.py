"""What moto 5.2 needs to serve thingpress's local deployment: one guarded layer over moto.

The changes come in three groups, each applied once per process:

* :func:`apply_behaviour_patches` makes moto answer as AWS does. The emulator
  *and* the unit tests' in-process ``mock_aws`` fixtures apply it, so both see
  the same AWS rules (AWS-true certificate ids, ``CreateThing`` on an existing
  thing, atomic DynamoDB requests, versioned S3 event records, TLS bucket
  policies, SQS deletes under the queue's lock).
* :func:`apply_speed_patches` changes only the cost: same answers.
* :func:`configure_moto` (the emulator) adds both plus what only a server needs
  (no Docker, no built-in SQS->Lambda delivery); :func:`install` wraps moto's
  WSGI application in :class:`Extension` (IoT tags, Lambda code, quota mode).

:func:`check_moto` runs first (and at ``make install``): moto must be the
version the Pipfile pins and every attribute in :data:`PATCHED_ATTRIBUTES` must
exist, so an upgrade fails loudly instead of silently serving stock behaviour.

The changes, one by one:

* **IoT tags.** moto's IoT has no ``TagResource``, ``UntagResource`` or
  ``ListTagsForResource``; the Terraform AWS provider calls them for
  ``aws_iot_policy``, ``aws_iot_thing_type`` and ``aws_iot_thing_group`` and
  retries a 500 for minutes. :class:`IotTags` answers them from a per-ARN store,
  which also keeps the ``tags`` sent with a ``Create*`` call (as AWS does).
* **AWS-true certificate ids.** ``iot.use_valid_cert`` is switched on: the
  certificate id is the SHA-256 of the DER, as AWS IoT's ids are seen to be (no API
  page says so: thingpress uses the id AWS returns, ``thingpress.importer``). (moto 5.2's
  ``POST /moto-api/config`` ignores the ``iot`` section, so it is set in-process.)
* **No built-in Lambda delivery from SQS.** moto delivers a queue's messages to
  its event source mappings itself on ``SendMessage`` (and needs Docker to run
  the function); the thingpress runner is the one consumer, so that delivery is
  turned off and messages stay in the queue for the runner to poll.
* **Downloadable Lambda code.** AWS answers ``GetFunction`` with ``Code.Location``
  and ``GetLayerVersion`` with ``Content.Location``, presigned URLs of the
  deployed zips; moto gives placeholders. :class:`LambdaCode` rewrites them to
  ``/moto-api/thingpress/lambda-code?arn=...`` on the emulator, which serves the
  bytes moto stored, so the runner downloads the deployed code as from AWS.
* **Bucket policies as AWS evaluates them over TLS.** moto evaluates a bucket
  policy's ``Deny`` statements on object requests but ignores their conditions'
  meaning: it evaluates only ``StringEquals`` (other operators always "hold"),
  and ``aws:SecureTransport`` is never set. The usual
  ``DenyInsecureTransport`` statement (``Bool aws:SecureTransport false``) then
  refuses every ``PutObject``. :func:`bucket_permission` evaluates as AWS does for
  a request over HTTPS (every AWS SDK call): a statement applies only when its
  conditions hold, with ``aws:SecureTransport`` = ``true``. Conditions are IAM's
  (:mod:`.iam_conditions`: ``StringLike``/``ArnLike`` wildcards as IAM matches them).
* **Service deliveries only where the target's policy and its key's policy allow
  them** (:mod:`.service_paths`). moto's EventBridge rules, S3 event notifications
  (and AWS's CloudWatch alarm actions, which moto never runs) deliver whatever the
  policies say; AWS needs the queue or topic policy to let the service principal send
  (with the ``aws:SourceArn`` it sets) and, for an SSE-KMS target or an encrypted bus,
  the key policy to let it use the key, and drops the delivery otherwise.
* **A missing object is 403 to a caller that may not list the bucket** (:mod:`.s3_rules`),
  as the HeadObject and GetObject API references say; moto answers 404 to everyone.
* **SetQueueAttributes changes only what it names** (:mod:`.sqs_rules`): moto drops the
  queue's policy on every call that does not name ``Policy`` (a redrive policy, a visibility
  timeout), so S3 could no longer deliver to any queue with a dead-letter queue.
* **SQS receive in linear time.** moto 5.2's ``ReceiveMessage`` re-reads *every*
  queue attribute (three scans of the queue) for each message it returns, to
  check the retention period, and its clock goes through two ``datetime``
  conversions per call: a receive of 10 from a queue of 200 took ~200 ms, and a
  benchmark's queue of 100k messages would take minutes per receive. The
  retention check reads the one attribute, and moto's SQS clock is ``time.time()``
  (same value: seconds since the epoch, UTC). ``SendMessage`` reads every queue
  attribute too (for one flag), so each send counted the queue's messages three
  times with a clock reading per message; the counts now take one pass and one
  reading.
* **SQS queues changed under their lock** (:func:`lock_sqs_queues`). moto's
  ``Queue.delete_message`` rebuilds the queue's message list and assigns it back,
  without the lock ``add_message`` appends under. One delete racing one send
  cannot lose the send (CPython switches threads only at a loop's back-jump, and
  the delete's loop then sees the appended message), but two overlapping deletes
  can: the second one assigns its rebuilt list while the first is still copying
  the old one; a ``SendMessageBatch`` that lands on the second's list between
  them vanishes when the first assigns its copy, and the message the second
  deleted comes back (seen: ten import messages of one batch vanished while the
  importer deleted its own). And ``ReceiveMessage``, when it moves a message
  past ``maxReceiveCount`` to the dead-letter queue, removes it from the list in
  place: a delete copying that list meanwhile skips the next message (lost) and
  keeps the moved one (now in both queues). Deletes and receives (with the DLQ
  move) take the queue's lock, so each sees and leaves a whole list.
* **CreateThing on an existing thing.** AWS returns the existing thing when the
  request matches it (same type and attributes) and answers
  ``ResourceAlreadyExistsException`` when it differs; moto silently replaces the
  thing (new id, new attributes). :func:`aws_create_thing` answers as AWS does,
  so a re-uploaded manifest finds its things as they are.
* **S3 event records with the object version.** For a versioned bucket, AWS's
  ``ObjectCreated`` record carries ``s3.object.versionId`` (and a ``sequencer``);
  moto's has neither, so a consumer could not tell which version an event is
  about. :func:`_s3_event_with_version` adds them.
* **DynamoDB requests one at a time.** DynamoDB applies a conditional write or a
  transaction atomically; moto's backend is plain Python shared by the server's
  threads, so two concurrent ``TransactWriteItems`` with the same
  ``attribute_not_exists`` condition could both succeed (seen: a certificate
  delivered twice at once was counted twice). DynamoDB requests are serialized
  (:func:`one_at_a_time` on moto's DynamoDB response handler, so in-process
  ``mock_aws`` clients get it too).
* **DynamoDB transaction conflicts** (:mod:`.conflicts`, off by default). Serialized,
  no transaction is ever "ongoing", so moto never answers what AWS answers a write to an
  item an ongoing ``TransactWriteItems`` holds
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling):
  ``TransactionConflictException``, or a transaction cancelled with reason
  ``TransactionConflict``. Under the same lock, a transaction that succeeded holds its
  items for a while and writes to them are refused as AWS does
  (:func:`_with_transaction_holds`); the hold (``THINGPRESS_EMULATOR_TRANSACTION_HOLD_MS``)
  and a chaos rate are set at ``/moto-api/thingpress/conflicts``.
* **Global secondary indexes that lag** (:mod:`.index_lag`, off by default). moto updates an
  index with the write; AWS propagates it "within a fraction of a second". Under the same lock,
  a ``Query``/``Scan`` of a GSI answers from the table as it was ``lag_ms`` ago
  (``THINGPRESS_EMULATOR_INDEX_LAG_MS``; ``/moto-api/thingpress/index-lag``).
* **SQS message move tasks** (DLQ redrive): moto has no ``StartMessageMoveTask``,
  ``ListMessageMoveTasks`` or ``CancelMessageMoveTask``; :mod:`.sqs_move`
  implements them as the SQS API reference describes and :func:`configure_moto`
  adds them to moto's SQS responses.
* **Quota mode.** Optional per-operation IoT token buckets (:mod:`.quota`),
  changeable at runtime through ``/moto-api/thingpress/quotas``.
* **Fault injection** (:mod:`.faults`, off by default): 500 after an applied
  DynamoDB or SQS write, partial ``SendMessageBatch`` failures, throttling
  bursts; set and counted at ``/moto-api/thingpress/faults`` (``make chaos``).
* **IoT deletions refused as AWS refuses them** (:mod:`.iot_deletion`): thing
  types (deprecated first, then a wait, no things left), policies, certificates,
  things and thing groups. The one setting (the deprecation wait) is shown and
  changed at ``/moto-api/thingpress/settings``.
* **IoT registry limits refused as AWS refuses them** (:mod:`.iot_rules`, with the behaviour
  patches): thing attributes (3 without a thing type, 50 with one), a thing's thing groups
  (at most 10, one per hierarchy, never a dynamic group), and ``CreateDynamicThingGroup``.
* **DetachThingPrincipal takes seconds to propagate** (:mod:`.iot_detach`): for a
  while after the detach, DeleteCertificate and DeleteThing refuse as if the
  principal were still attached, as AWS does
  (https://docs.aws.amazon.com/iot/latest/apireference/API_DetachThingPrincipal.html).
  A behaviour patch (in-process moto too, off unless set); the emulator starts it
  at a few seconds (``THINGPRESS_EMULATOR_DETACH_PROPAGATION``) and shows it at
  ``/moto-api/thingpress/settings``.
* **Constant-time request dispatch and lookups** (:func:`speed_up_moto`). Measured
  with py-spy on the floor benchmark, about a third of the emulator's CPU went to
  work that does not change between requests: moto's dispatcher lists and
  checks its ~150 module folders with ``stat`` on every request, under a global lock
  (``list_of_moto_modules``), then tries every service's URL patterns; every
  response class is introspected with ``inspect.getmembers`` to find the action;
  and IoT finds a thing by name and a certificate by ARN by scanning every thing
  and certificate (``describe_thing``, ``_get_principal``), so each call grew
  with the number of devices. These are now computed once, or looked up by key.
  The answers are the same; only the cost changes.
* **Transactions that copy only their items.** moto's ``TransactWriteItems``
  deep-copies every table it touches before it starts, to roll back on failure:
  with the audit table at a few thousand rows that was 70 % of the emulator's
  CPU in a pipeline run, and it grows with the table. :func:`item_level_rollback`
  snapshots only the items the transaction names (at most 100, each once), lets
  moto run it unchanged, and puts those items back if it fails. Same outcome:
  a transaction touches only the items it names.

The IoT tag, Lambda-code and quota pieces are a WSGI layer in front of moto's own
application; everything else patches moto's own code (listed in
:data:`PATCHED_ATTRIBUTES`).
"""

from __future__ import annotations

import functools
import io
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from moto.core.request import Request
from moto.core.routing import get_service_router
from moto.core.utils import unix_time

from thingpress_cli.local import iot_deletion, iot_detach, iot_rules, s3_rules, service_paths, sqs_move, sqs_rules
from thingpress_cli.local.request_log import signing_service
from thingpress_cli.local.conflicts import CONFLICTS_PATH, HOLDS, SINGLE_WRITES, TRANSACTION, Key
from thingpress_cli.local.faults import FAULTS_PATH, Faults
from thingpress_cli.local.iam_conditions import condition_holds
from thingpress_cli.local.index_lag import INDEX_LAG, LAG_PATH, endpoint as index_lag_endpoint
from thingpress_cli.local.iot_deletion import DeletionRules
from thingpress_cli.local.quota import Quotas

#: The Pipfile that pins moto (the version these patches are written for).
PIPFILE = Path(__file__).resolve().parents[2] / "Pipfile"
#: Path of the runtime quota endpoint (GET shows, POST replaces the rates).
QUOTA_PATH = "/moto-api/thingpress/quotas"
#: Path of the emulator settings endpoint (GET shows, POST changes; see :class:`.DeletionRules`).
SETTINGS_PATH = "/moto-api/thingpress/settings"
#: Where the deployed zips of functions and layer versions are served from.
CODE_PATH = "/moto-api/thingpress/lambda-code"
_GET_FUNCTION = re.compile(r"^/2015-03-31/functions/[^/]+/?$")
_GET_LAYER_VERSION = re.compile(r"^/2018-10-31/layers/[^/]+/versions/\d+/?$")
#: IoT operations answered here instead of by moto.
TAG_OPERATIONS = frozenset({"TagResource", "UntagResource", "ListTagsForResource"})

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def iot_operation(environ: dict[str, Any]) -> str | None:
    """The IoT operation a REST request targets (``RegisterCertificateWithoutCA``...)."""
    try:
        operation, _ = get_service_router("iot").match(Request(environ, shallow=True))
    except Exception:  # noqa: BLE001 - werkzeug NotFound/MethodNotAllowed: not an IoT operation
        return None
    return str(operation.name)


def _may_need_extension(environ: dict[str, Any]) -> bool:
    """Whether an IoT request may be one the extension answers or watches, without routing it.

    With the quota mode off, only these need the operation's name: the tag APIs
    (``/tags``, ``/untag``) and a ``Create*`` whose body carries ``tags``. Every
    other IoT call (the importer's attach calls, most of the traffic) skips the
    operation lookup.
    """
    path = environ.get("PATH_INFO", "")
    if path.startswith(("/tags", "/untag")):
        return True
    method = environ.get("REQUEST_METHOD")
    return method in ("POST", "PUT") and b'"tags"' in read_body(environ)


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back so the next layer can read it too."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def json_response(start_response: StartResponse, status: str, payload: Any, headers: dict[str, str] | None = None) -> list[bytes]:
    body = json.dumps(payload).encode()
    all_headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})}
    start_response(status, list(all_headers.items()))
    return [body]


class IotTags:
    """IoT resource tags by ARN: the three tag APIs plus tags given at creation."""

    def __init__(self) -> None:
        self._tags: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def tag(self, arn: str, tags: Iterable[dict[str, str]]) -> None:
        with self._lock:
            self._tags.setdefault(arn, {}).update({t["Key"]: t.get("Value", "") for t in tags})

    def untag(self, arn: str, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._tags.get(arn, {}).pop(key, None)

    def list(self, arn: str) -> list[dict[str, str]]:
        with self._lock:
            return [{"Key": k, "Value": v} for k, v in sorted(self._tags.get(arn, {}).items())]

    def handle(self, operation: str, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """Answer ``TagResource`` / ``UntagResource`` / ``ListTagsForResource``."""
        request = Request(environ)
        if operation == "ListTagsForResource":
            return json_response(start_response, "200 OK", {"tags": self.list(request.args.get("resourceArn", ""))})
        body = json.loads(read_body(environ) or b"{}")
        if operation == "TagResource":
            self.tag(body["resourceArn"], body.get("tags", []))
        else:
            # UntagResource: POST /untag with {"resourceArn", "tagKeys"} (restJson body).
            self.untag(body["resourceArn"], body.get("tagKeys", []))
        return json_response(start_response, "200 OK", {})

    def capture(self, request_body: bytes, response_body: bytes) -> None:
        """Keep the ``tags`` of a successful IoT ``Create*`` call under the ARN it returned."""
        try:
            tags = json.loads(request_body or b"{}").get("tags")
            answer = json.loads(response_body or b"{}")
        except (ValueError, AttributeError):
            return
        if not tags or not isinstance(answer, dict):
            return
        arns = [v for k, v in answer.items() if k.endswith("Arn") and isinstance(v, str)]
        for arn in arns[:1]:
            self.tag(arn, tags)


class LambdaCode:
    """Downloadable ``Code.Location`` / ``Content.Location`` for the deployed zips."""

    @staticmethod
    def wants(environ: dict[str, Any]) -> bool:
        path = environ.get("PATH_INFO", "")
        return environ.get("REQUEST_METHOD") == "GET" and bool(_GET_FUNCTION.match(path) or _GET_LAYER_VERSION.match(path))

    @staticmethod
    def rewrite(environ: dict[str, Any], app: WsgiApp, start_response: StartResponse) -> Iterable[bytes]:
        """Call moto, then point the answer's code location at this emulator."""
        captured: dict[str, Any] = {}

        def hold(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            captured.update(status=status, headers=headers)
            return lambda data: None

        body = b"".join(app(environ, hold))
        status, headers = captured["status"], captured["headers"]
        if status.startswith("200"):
            answer = json.loads(body)
            base = f"http://{environ.get('HTTP_HOST', 'localhost')}{CODE_PATH}?arn="
            if isinstance(answer.get("Code"), dict) and "FunctionArn" in answer.get("Configuration", {}):
                answer["Code"]["Location"] = base + answer["Configuration"]["FunctionArn"]
            if isinstance(answer.get("Content"), dict) and "LayerVersionArn" in answer:
                answer["Content"]["Location"] = base + answer["LayerVersionArn"]
            body = json.dumps(answer).encode()
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"] + [("Content-Length", str(len(body)))]
        start_response(status, headers)
        return [body]

    @staticmethod
    def serve(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """The zip of a function (by function ARN) or layer version (by layer version ARN)."""
        from moto.awslambda.utils import get_backend

        arn = Request(environ).args.get("arn", "")
        parts = arn.split(":")
        code: bytes | None = None
        if len(parts) >= 7 and parts[2] == "lambda":
            backend = get_backend(parts[4], parts[3])  # lambda_simple: use_docker is off
            try:
                if parts[5] == "function":
                    code = backend.get_function(parts[6]).code_bytes
                elif parts[5] == "layer":
                    found = backend.layers_versions_by_arn(arn)
                    code = found.code_bytes if found is not None else None
            except Exception:  # noqa: BLE001 - moto's not-found errors differ by resource
                code = None
        if not code:
            return json_response(start_response, "404 Not Found", {"message": f"no deployed code for {arn!r}"})
        start_response("200 OK", [("Content-Type", "application/zip"), ("Content-Length", str(len(code)))])
        return [code]


def signing_region(environ: dict[str, Any]) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        return auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")[2]
    except IndexError:
        return "us-east-1"


def aws_create_thing(create_thing: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``IoTBackend.create_thing``, answering as AWS for a thing that exists.

    AWS returns the existing thing when the request matches it (same type and
    attributes) and raises ``ResourceAlreadyExistsException`` when it differs
    (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThing.html);
    moto replaces the thing. A thing that does not exist is created by moto.
    """
    from moto.iot.exceptions import ResourceAlreadyExistsException

    def create(self: Any, thing_name: str, thing_type_name: str | None, attribute_payload: dict[str, Any] | None,
               billing_group_name: str | None = None) -> Any:
        existing = _thing_by_name(self, thing_name)
        if existing is None:
            return create_thing(self, thing_name, thing_type_name, attribute_payload, billing_group_name)
        wanted_type = thing_type_name or None
        wanted_attributes = (attribute_payload or {}).get("attributes") or {}
        current_type = existing.thing_type.thing_type_name if existing.thing_type else None
        if wanted_type == current_type and wanted_attributes == existing.attributes:
            return existing
        raise ResourceAlreadyExistsException(f"Thing {thing_name} already exists with different tags",
                                             existing.thing_name, existing.arn)

    return create


def one_at_a_time(call_action: Callable[..., Any]) -> Callable[..., Any]:
    """A response class's ``call_action`` run under one lock: each request applies atomically.

    Under the same lock, when :data:`.conflicts.HOLDS` is on, a write is first checked
    against the items recent transactions hold (:func:`_with_transaction_holds`); with
    :data:`.index_lag.INDEX_LAG` on, a GSI read sees the table as it was a moment ago.
    """
    lock = threading.Lock()

    def serialized(self: Any) -> Any:
        with lock, INDEX_LAG.around(self):
            if HOLDS.active:
                return _with_transaction_holds(self, call_action)
            return call_action(self)

    return serialized


def _with_transaction_holds(handler: Any, call_action: Callable[..., Any]) -> Any:
    """A DynamoDB write refused as AWS refuses it during a transaction on its item, else applied.

    AWS: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling
    (the rules and the model: :mod:`.conflicts`). A refused request is answered
    before moto sees it, so nothing of it is applied; a ``TransactWriteItems`` that
    succeeded holds its items.
    """
    action = handler._get_action()
    if action not in SINGLE_WRITES and action != TRANSACTION:
        return call_action(handler)
    params = getattr(handler, "params", None) or {}
    entries = params.get("TransactItems") if action == TRANSACTION else [{action: params}]
    keys = [_item_key(handler.dynamodb_backend, entry) for entry in entries or []]
    token = params.get("ClientRequestToken") if action == TRANSACTION else None
    refusal = HOLDS.refusal(action, keys, token)
    if refusal is not None:  # rendered as moto's call_action renders an error its action raises
        headers = {**handler.response_headers, **dict(refusal.get_headers()), "status": str(refusal.code)}
        return refusal.code, headers, refusal.description
    answer = call_action(handler)
    if action == TRANSACTION and answer[0] == 200:
        HOLDS.hold(keys, token)
    return answer


def _item_key(backend: Any, entry: Any) -> Key | None:
    """(table ARN, hash key, range key) of the one item a transaction action names, else None.

    A single write passes as ``{"PutItem": params}``: its ``Item`` or ``Key`` is read as a
    transaction's ``Put``/``Update``/``Delete`` is (:func:`_transaction_items`).
    """
    found = _transaction_items(backend, [entry])
    if not found:
        return None
    table, hash_key, range_key = found[0]
    return table.table_arn, hash_key, range_key


class Extension:
    """WSGI layer in front of moto: IoT tags, Lambda code locations, quota mode, and the control endpoints."""

    def __init__(self, app: WsgiApp, quotas: Quotas | None = None, rules: DeletionRules | None = None) -> None:
        self.app = app
        self.quotas = quotas or Quotas()
        self.rules = rules or DeletionRules()
        self.faults = Faults()
        self.tags = IotTags()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == QUOTA_PATH:
            return self._quota_endpoint(environ, start_response)
        if environ.get("PATH_INFO") == SETTINGS_PATH:
            return self._settings_endpoint(environ, start_response)
        if environ.get("PATH_INFO") == FAULTS_PATH:
            return self._faults_endpoint(environ, start_response)
        if environ.get("PATH_INFO") == CONFLICTS_PATH:
            return self._conflicts_endpoint(environ, start_response)
        if environ.get("PATH_INFO") == CODE_PATH:
            return LambdaCode.serve(environ, start_response)
        if environ.get("PATH_INFO") == LAG_PATH:
            return index_lag_endpoint(environ, start_response)
        service = signing_service(environ)
        if self.faults.active:
            return self.faults.apply(service, environ, start_response, lambda env, start: self._serve(service, env, start))
        return self._serve(service, environ, start_response)

    def _serve(self, service: str | None, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if service == "lambda" and LambdaCode.wants(environ):
            return LambdaCode.rewrite(environ, self.app, start_response)
        if service != "iot" or not (self.quotas.rates or _may_need_extension(environ)):
            return self.app(environ, start_response)
        operation = iot_operation(environ)
        if operation is None:
            return self.app(environ, start_response)
        if not self.quotas.acquire(operation):
            return json_response(
                start_response,
                "400 Bad Request",
                {"message": f"Rate exceeded for {operation}"},
                {"x-amzn-ErrorType": "ThrottlingException"},
            )
        if operation in TAG_OPERATIONS:
            return self.tags.handle(operation, environ, start_response)
        if operation.startswith("Create"):
            return self._create_capturing_tags(environ, start_response)
        return self.app(environ, start_response)

    def _create_capturing_tags(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request_body = read_body(environ)
        status: list[str] = []

        def remember(code: str, headers: Any, *args: Any) -> Any:
            status.append(code)
            return start_response(code, headers, *args)

        chunks = list(self.app(environ, remember))
        if status and status[0].startswith("200"):
            self.tags.capture(request_body, b"".join(chunks))
        return chunks

    def _quota_endpoint(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                self.quotas.configure(json.loads(read_body(environ) or b"{}"))
            except (ValueError, TypeError) as error:
                return json_response(start_response, "400 Bad Request", {"message": str(error)})
        return json_response(start_response, "200 OK", {"rates": self.quotas.rates})

    def _settings_endpoint(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                self.rules.configure(json.loads(read_body(environ) or b"{}"))
            except (ValueError, TypeError) as error:
                return json_response(start_response, "400 Bad Request", {"message": str(error)})
        return json_response(start_response, "200 OK", self.rules.as_dict())

    def _faults_endpoint(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                self.faults.configure(json.loads(read_body(environ) or b"{}"))
            except (ValueError, TypeError, KeyError) as error:
                return json_response(start_response, "400 Bad Request", {"message": str(error)})
        return json_response(start_response, "200 OK", self.faults.report())

    @staticmethod
    def _conflicts_endpoint(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                HOLDS.configure(json.loads(read_body(environ) or b"{}"))
            except (ValueError, TypeError) as error:
                return json_response(start_response, "400 Bad Request", {"message": str(error)})
        return json_response(start_response, "200 OK", HOLDS.report())


#: The request context AWS sees for an SDK call: always over TLS.
SECURE_CONTEXT = {"aws:SecureTransport": "true"}


def bucket_permission(policy: bytes | str | None, action: str, resource: str) -> Any:
    """AWS's verdict for ``action`` on ``resource`` under a bucket policy, for a request over TLS."""
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    if policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(policy)
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    permitted = False
    for raw in statements:
        if raw.get("Condition") and not condition_holds(raw["Condition"], SECURE_CONTEXT):
            continue  # the condition does not hold: the statement does not apply
        verdict = IAMPolicyStatement({k: v for k, v in raw.items() if k != "Condition"}).is_action_permitted(action, resource)
        if verdict == PermissionResult.DENIED:
            return verdict
        permitted = permitted or verdict == PermissionResult.PERMITTED
    return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL


def _unix_time(dt: Any = None) -> float:
    return unix_time(dt) if dt is not None else time.time()


def _unix_time_millis(dt: Any = None) -> float:
    return (unix_time(dt) if dt is not None else time.time()) * 1000.0


def _under_queue_lock(method: Callable[..., Any]) -> Callable[..., Any]:
    """A ``Queue`` method run under the lock moto's ``add_message`` appends under."""
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._messages_lock:
            return method(self, *args, **kwargs)

    return locked


def _receive_under_queue_lock(receive_message: Callable[..., Any]) -> Callable[..., Any]:
    """``SQSBackend.receive_message`` run under the queue's lock, its move to the DLQ included.

    The lock is moto's ``Condition`` over an ``RLock``: a long poll's wait
    (``Queue.wait_for_messages``, reentrant) releases it fully while it waits, so
    sends and deletes go on during the poll. The DLQ's own lock is taken inside
    (its ``add_message``): the order is always source queue, then its DLQ.
    """
    def receive(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        with self.get_queue(queue_name)._messages_lock:
            return receive_message(self, queue_name, *args, **kwargs)

    return receive


def lock_sqs_queues() -> None:
    """Make moto's SQS deletes and receives take the queue's lock (see the module notes)."""
    from moto.sqs.models import Queue, SQSBackend

    Queue.delete_message = _under_queue_lock(Queue.delete_message)  # type: ignore[method-assign]
    SQSBackend.receive_message = _receive_under_queue_lock(SQSBackend.receive_message)  # type: ignore[method-assign]


def _count_messages(queue: Any, which: str) -> int:
    """moto's ``ApproximateNumberOfMessages*`` counts in one pass with one clock reading (not one per message)."""
    now = time.time() * 1000.0
    if which == "delayed":
        return sum(1 for m in queue._messages if now < m.delayed_until)
    if which == "not_visible":
        return sum(1 for m in queue._messages if not now > m.visible_at)
    return len(_visible_messages(queue))


def _visible_messages(queue: Any) -> list[Any]:
    now = time.time() * 1000.0
    return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]


def _within_retention(backend: Any, queue_name: str, message: Any) -> bool:
    """moto's retention check, reading only ``MessageRetentionPeriod``."""
    queue = backend.get_queue(queue_name)
    return bool(int(queue.message_retention_period) + message.sent_timestamp / 1000 > time.time())


def _s3_event_with_version(make_event: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """moto's S3 event builder, plus ``versionId`` and ``sequencer`` as AWS sends them."""
    counter = iter(range(1, 1 << 62))

    def event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        built = make_event(event_name, bucket, key, notification_id)
        for record in built.get("Records", []):
            obj = record["s3"]["object"]
            version = getattr(key, "version_id", None)
            if version and version != "null":
                obj["versionId"] = version
            obj["sequencer"] = f"{next(counter):016X}"
        return built

    return event


def _thing_by_name(backend: Any, thing_name: str) -> Any:
    """The thing named ``thing_name`` by its key (moto keys things by ARN), else None."""
    from moto.utilities.utils import get_partition

    region = backend.region_name
    thing = backend.things.get(f"arn:{get_partition(region)}:iot:{region}:{backend.account_id}:thing/{thing_name}")
    return thing if thing is not None and thing.thing_name == thing_name else None


def speed_up_moto() -> None:
    """Replace moto's per-request scans with lookups (same answers; see the module notes)."""
    import functools
    import inspect

    from moto import backends
    from moto.core import responses
    from moto.iot.exceptions import ResourceNotFoundException
    from moto.iot.models import IoTBackend
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = frozenset(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]

    by_host = functools.lru_cache(maxsize=256)(DomainDispatcherApplication.get_backend_for_host)
    DomainDispatcherApplication.get_backend_for_host = by_host  # type: ignore[method-assign]

    @functools.lru_cache(maxsize=None)
    def method_names(clazz: type) -> frozenset[str]:
        return frozenset(name for name, _ in inspect.getmembers(clazz, predicate=inspect.isfunction))

    responses.method_names_from_class = method_names  # type: ignore[assignment]

    def describe_thing(self: Any, thing_name: str) -> Any:
        thing = _thing_by_name(self, thing_name)
        if thing is None:
            raise ResourceNotFoundException()
        return thing

    scan_principal = IoTBackend._get_principal

    def get_principal(self: Any, principal_arn: str) -> Any:
        if ":cert/" in principal_arn:
            cert = self.certificates.get(principal_arn.rsplit(":cert/", 1)[1])
            if cert is None or cert.arn != principal_arn:
                raise ResourceNotFoundException()
            return cert
        return scan_principal(self, principal_arn)

    IoTBackend.describe_thing = describe_thing  # type: ignore[method-assign]
    IoTBackend._get_principal = get_principal  # type: ignore[method-assign]


class _SameTable:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend: a table is not copied."""

    def __init__(self, table_class: type) -> None:
        import copy

        self._table_class = table_class
        self._deepcopy = copy.deepcopy

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, self._table_class) else self._deepcopy(value, memo)


def _transaction_items(backend: Any, transact_items: Any) -> list[tuple[Any, Any, Any]]:
    """(table, hash key, range key) of every item a ``TransactWriteItems`` request names."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    found = []
    for entry in transact_items if isinstance(transact_items, list) else []:
        op = next(iter(entry.values()), None) if isinstance(entry, dict) and len(entry) == 1 else None
        table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
        attrs = (op.get("Item") if "Item" in op else op.get("Key")) if table is not None else None
        if not isinstance(attrs, dict) or table.hash_key_attr not in attrs:
            continue
        range_key = None
        if table.range_key_attr is not None:
            if table.range_key_attr not in attrs:
                continue
            range_key = DynamoType(attrs[table.range_key_attr])
        found.append((table, DynamoType(attrs[table.hash_key_attr]), range_key))
    return found


def item_level_rollback(transact_write_items: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``transact_write_items``, rolled back item by item instead of from whole-table copies."""
    import copy

    def transact(self: Any, transact_items: Any) -> Any:
        saved = [(table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key)))
                 for table, hash_key, range_key in _transaction_items(self, transact_items)]
        try:
            return transact_write_items(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(saved):
                if item is None:
                    table.delete_item(hash_key, range_key)
                elif range_key is None:
                    table.items[hash_key] = item
                else:
                    table.items[hash_key][range_key] = item
            raise

    return transact


#: Every moto attribute this module replaces or wraps, as (module, dotted attribute).
#: :func:`check_moto` resolves each one, so a moto upgrade that moves one fails loudly.
PATCHED_ATTRIBUTES = (
    ("moto.core.config", "default_user_config"),
    ("moto.iot.models", "IoTBackend.create_thing"),
    ("moto.iot.models", "IoTBackend.describe_thing"),
    ("moto.iot.models", "IoTBackend._get_principal"),
    ("moto.dynamodb.responses", "DynamoHandler.call_action"),
    ("moto.dynamodb.models", "copy"),
    ("moto.dynamodb.models", "DynamoDBBackend.transact_write_items"),
    ("moto.dynamodb.models.table", "Table"),
    ("moto.s3.notifications", "_get_s3_event"),
    ("moto.s3.models", "FakeBucket.get_permission"),
    ("moto.sqs.models", "unix_time"),
    ("moto.sqs.models", "unix_time_millis"),
    ("moto.sqs.models", "SQSBackend.is_message_valid_based_on_retention_period"),
    ("moto.sqs.models", "Queue.delete_message"),
    ("moto.sqs.models", "SQSBackend.receive_message"),
    ("moto.iot.models", "IoTBackend.deprecate_thing_type"),
    ("moto.iot.models", "IoTBackend.delete_thing_type"),
    ("moto.iot.models", "IoTBackend.delete_policy"),
    ("moto.iot.models", "IoTBackend.delete_certificate"),
    ("moto.iot.models", "IoTBackend.delete_thing"),
    ("moto.iot.models", "IoTBackend.delete_thing_group"),
    *iot_rules.PATCHED_ATTRIBUTES,
    *iot_detach.PATCHED_ATTRIBUTES,
    *sqs_rules.PATCHED_ATTRIBUTES,
    ("moto.sqs.models", "Queue.messages"),
    ("moto.sqs.models", "Queue.approximate_number_of_messages"),
    ("moto.sqs.models", "Queue.approximate_number_of_messages_not_visible"),
    ("moto.sqs.models", "Queue.approximate_number_of_messages_delayed"),
    ("moto.events.models", "Rule._send_to_sqs_queue"),
    ("moto.s3.notifications", "_send_sqs_message"),
    ("moto.cloudwatch.models", "CloudWatchBackend.set_alarm_state"),
    ("moto.s3.responses", "S3Response.get_object"),
    ("moto.s3.responses", "S3Response.head_object"),
    ("moto.events.models", "Rule.arn"),
    ("moto.backends", "list_of_moto_modules"),
    ("moto.moto_server.werkzeug_app", "DomainDispatcherApplication.get_backend_for_host"),
    ("moto.core.responses", "method_names_from_class"),
)
#: Instance attributes replaced by a class-level property: (module, class, attribute set in ``__init__``).
PATCHED_INSTANCE_ATTRIBUTES = (("moto.sqs.models", "Queue", "lambda_event_source_mappings"),)


class MotoMismatch(RuntimeError):
    """The installed moto is not the version these patches were written for."""


def pinned_moto_version(pipfile: Path = PIPFILE) -> str:
    """The moto version the Pipfile pins (``moto = {version = "==X", ...}``)."""
    import tomllib

    spec = tomllib.loads(pipfile.read_text())["dev-packages"]["moto"]
    version = spec["version"] if isinstance(spec, dict) else spec
    return str(version).removeprefix("==")


def check_moto(pinned: str | None = None, attributes: Iterable[tuple[str, str]] = PATCHED_ATTRIBUTES,
               instance_attributes: Iterable[tuple[str, str, str]] = PATCHED_INSTANCE_ATTRIBUTES) -> None:
    """Fail loudly unless moto is the pinned version and every attribute patched here exists."""
    import importlib
    import inspect

    import moto

    wanted = pinned or pinned_moto_version()
    if moto.__version__ != wanted:
        raise MotoMismatch(f"moto {moto.__version__} is installed; thingpress_cli/local/moto_ext.py is written for "
                           f"moto {wanted} (the Pipfile pin): re-check every patch before changing the pin")
    missing = []
    for module_name, dotted in attributes:
        target: Any = importlib.import_module(module_name)
        for part in dotted.split("."):
            if not hasattr(target, part):
                missing.append(f"{module_name}.{dotted}")
                break
            target = getattr(target, part)
    for module_name, class_name, attribute in instance_attributes:
        init = getattr(getattr(importlib.import_module(module_name), class_name, None), "__init__", None)
        if init is None or not re.search(rf"self\.{attribute}\s*[:=]", inspect.getsource(init)):
            missing.append(f"{module_name}.{class_name}().{attribute}")
    if missing:
        raise MotoMismatch(f"moto {moto.__version__} lacks what moto_ext.py patches: {', '.join(missing)}")


_applied: set[str] = set()


def apply_behaviour_patches() -> None:
    """Make moto answer as AWS does: the emulator and the in-process unit-test fixtures both use these.

    AWS-true IoT certificate ids and ``CreateThing`` on an existing thing, IoT registry
    limits (:mod:`.iot_rules`), DynamoDB requests applied one at a time, S3 event records
    with the object version, bucket policies evaluated as over TLS, SQS deletes under the
    queue's lock, queue policies kept by ``SetQueueAttributes`` calls that do not name them,
    a detach that takes a while to propagate (:mod:`.iot_detach`, off unless set).
    Idempotent: applied once per process.
    """
    if "behaviour" in _applied:
        return
    check_moto()
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.core.config import default_user_config
    from moto.dynamodb.responses import DynamoHandler
    from moto.events.models import Rule as EventsRule
    from moto.iot.models import IoTBackend
    from moto.s3 import notifications as s3_notifications
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response
    from moto.sqs.models import Queue

    default_user_config["iot"] = {"use_valid_cert": True}
    IoTBackend.create_thing = aws_create_thing(IoTBackend.create_thing)  # type: ignore[method-assign]
    DynamoHandler.call_action = one_at_a_time(DynamoHandler.call_action)  # type: ignore[method-assign]
    lock_sqs_queues()
    s3_notifications._get_s3_event = _s3_event_with_version(s3_notifications._get_s3_event)
    FakeBucket.get_permission = lambda self, action, resource: bucket_permission(self.policy, action, resource)  # type: ignore[method-assign]
    EventsRule._send_to_sqs_queue = service_paths.deliver_rule_as_aws(EventsRule._send_to_sqs_queue)  # type: ignore[method-assign]
    s3_notifications._send_sqs_message = service_paths.notify_as_aws(s3_notifications._send_sqs_message)
    CloudWatchBackend.set_alarm_state = service_paths.alarm_actions_as_aws(CloudWatchBackend.set_alarm_state)  # type: ignore[method-assign]
    S3Response.get_object = s3_rules.get_object_as_aws(S3Response.get_object)  # type: ignore[method-assign]
    S3Response.head_object = s3_rules.head_object_as_aws(S3Response.head_object)  # type: ignore[method-assign]
    iot_rules.install()
    iot_detach.install()
    sqs_rules.install()
    _applied.add("behaviour")


def apply_speed_patches() -> None:
    """The same answers at less cost: SQS clock and counts, lookups by key, item-level rollback."""
    if "speed" in _applied:
        return
    check_moto()
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.sqs import models as sqs_models
    from moto.sqs.models import Queue, SQSBackend

    sqs_models.unix_time = _unix_time
    sqs_models.unix_time_millis = _unix_time_millis
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]
    Queue.messages = property(_visible_messages)  # type: ignore[assignment]
    Queue.approximate_number_of_messages = property(lambda q: _count_messages(q, "visible"))  # type: ignore[assignment]
    Queue.approximate_number_of_messages_not_visible = property(lambda q: _count_messages(q, "not_visible"))  # type: ignore[assignment]
    Queue.approximate_number_of_messages_delayed = property(lambda q: _count_messages(q, "delayed"))  # type: ignore[assignment]
    speed_up_moto()
    dynamodb_models.copy = _SameTable(Table)  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = item_level_rollback(DynamoDBBackend.transact_write_items)  # type: ignore[method-assign]
    _applied.add("speed")


def configure_moto(rules: DeletionRules) -> None:
    """The emulator's moto: behaviour and speed patches, IoT deletion rules, no Docker, no built-in SQS->Lambda delivery."""
    from moto.core.config import default_user_config
    from moto.sqs.models import Queue

    apply_behaviour_patches()
    apply_speed_patches()
    default_user_config["lambda"] = {"use_docker": False}
    # moto's Queue.send_message hands messages to queue.lambda_event_source_mappings
    # and deletes them; this class-level property makes that mapping always empty
    # (writes are dropped), so the ESM is still stored by moto's Lambda (and listed
    # by list_event_source_mappings) but the messages stay for the runner.
    Queue.lambda_event_source_mappings = property(  # type: ignore[assignment]
        lambda self: {}, lambda self, value: None
    )
    iot_deletion.install(rules)
    sqs_move.install()


def install(app: WsgiApp, quotas: Quotas | None = None, rules: DeletionRules | None = None) -> Extension:
    """Configure moto and wrap its WSGI application; returns the application to serve."""
    rules = rules or DeletionRules()
    configure_moto(rules)
    return Extension(app, quotas, rules)


def main() -> int:
    """``python -m thingpress_cli.local.moto_ext``: the install-time check (``make install`` runs it)."""
    import moto

    check_moto()
    sys.stdout.write(f"moto {moto.__version__} is the pinned version; all {len(PATCHED_ATTRIBUTES) + len(PATCHED_INSTANCE_ATTRIBUTES)} "
                     "patched attributes exist\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
