"""Real boto3 clients answered in the process: the AWS the scale and provider benchmarks run against.

botocore serializes each request as it would for AWS and parses each answer as AWS's; a
``before-send`` handler that returns a response stands in for the HTTP round trip ("Extensibility
guide: events", https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html). So the
product's real code runs -- ``AuditTable``'s claims, checkpoints and summaries, ``BatchSender``,
the ranged reads -- with the SDK's serialization and memory in the figures, and nothing leaves the
process:

* :class:`FileObjects`: S3 ``GetObject`` of any key answered from one local file (a ``Range:
  bytes=N-`` by seeking; the body streams from disk);
* :class:`CountingQueues`: SQS ``SendMessageBatch`` accepted and counted, ``SendMessage``
  (continuations) kept for the next invocation;
* :class:`HeldClaims`: a DynamoDB ``TransactWriteItems`` made only of certificate claims answered
  as DynamoDB answers one whose certificates are all new (the benchmark's are distinct), without
  keeping them: on AWS the claims live in the table, outside the Lambda. Every other DynamoDB
  request (the manifest's summary: start, lease, checkpoints) goes to the table: moto in the
  process, or the client's endpoint (the scale benchmark: a moto server outside the measured process).

botocore calls every ``before-send`` handler and takes the first answer, so moto's own handler
(``mock_aws``'s, on every client) would still apply each request: :func:`_take_over` removes it
from a client, and :class:`HeldClaims` hands moto what it does not answer itself.

:func:`load` is the one loader of a helper module from ``tests/`` for the benchmark scripts (they
run as scripts, outside any package).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from botocore.awsrequest import AWSResponse

TESTS = Path(__file__).resolve().parents[1]


def load(name: str) -> ModuleType:
    """A helper module from tests/ (``events``, ``factories``, ``aws_fixtures``), loaded once by file.

    ``events`` first: the others import it by name (pytest puts tests/ on the path; a script does not)."""
    if name in sys.modules:
        return sys.modules[name]
    if name != "events":
        load("events")
    spec = importlib.util.spec_from_file_location(name, TESTS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class _Raw:
    """What botocore reads an HTTP body from (``stream()`` for content, ``read()`` for a streaming body)."""

    def __init__(self, body: IO[bytes]):
        self._body = body

    def read(self, amt: int | None = None) -> bytes:
        return self._body.read(amt) if amt is not None else self._body.read()

    def stream(self, **_: Any) -> Any:
        while chunk := self._body.read(65536):
            yield chunk

    def close(self) -> None:
        self._body.close()


def _json(request: Any, status: int, payload: dict[str, Any], **headers: str) -> AWSResponse:
    import io

    body = json.dumps(payload).encode()
    return AWSResponse(request.url, status, {"x-amzn-requestid": str(uuid.uuid4()), "content-length": str(len(body)),
                                             **headers}, _Raw(io.BytesIO(body)))


def _moto_stubber() -> Any:
    """moto's ``before-send`` handler if moto is loaded in this process (``mock_aws``), else None."""
    return getattr(sys.modules.get("moto.core.models"), "botocore_stubber", None)


def _take_over(client: Any, event: str, handler: Any) -> None:
    """``handler`` answers ``event`` on ``client``, and moto's handler (if loaded) no longer sees that client's requests."""
    stubber = _moto_stubber()
    if stubber is not None:
        client.meta.events.unregister("before-send", stubber)
    client.meta.events.register_first(event, handler)


class FileObjects:
    """S3 ``GetObject`` answered from ``path`` whatever the key (version ``v1``, ETag ``e1``)."""

    def __init__(self, path: Path):
        self.path = path
        self.size = path.stat().st_size
        self.gets = 0

    def install(self, s3: Any) -> None:
        _take_over(s3, "before-send.s3.GetObject", self._get)

    def _get(self, request: Any, **_: Any) -> AWSResponse:
        self.gets += 1
        start = 0
        ranged = request.headers.get("Range")
        if isinstance(ranged, bytes):
            ranged = ranged.decode()
        if ranged:
            start = int(ranged.removeprefix("bytes=").split("-", 1)[0])
        body = self.path.open("rb")
        body.seek(start)
        headers = {"content-length": str(self.size - start), "etag": '"e1"', "x-amz-version-id": "v1",
                   "content-type": "text/plain"}
        if ranged:
            headers["content-range"] = f"bytes {start}-{self.size - 1}/{self.size}"
        return AWSResponse(request.url, 206 if ranged else 200, headers, _Raw(body))


class CountingQueues:
    """SQS answered in the process: batches accepted and counted, continuations kept."""

    def __init__(self) -> None:
        self.messages = 0
        self.continuations: list[str] = []

    def install(self, sqs: Any) -> None:
        _take_over(sqs, "before-send.sqs.SendMessageBatch", self._batch)
        _take_over(sqs, "before-send.sqs.SendMessage", self._one)

    @staticmethod
    def _answer(message_id: str, body: str) -> dict[str, str]:
        return {"MessageId": message_id, "MD5OfMessageBody": hashlib.md5(body.encode()).hexdigest()}  # noqa: S324

    def _batch(self, request: Any, **_: Any) -> AWSResponse:
        entries = json.loads(request.body)["Entries"]
        self.messages += len(entries)
        return _json(request, 200, {"Successful": [{"Id": e["Id"], **self._answer(str(uuid.uuid4()), e["MessageBody"])}
                                                   for e in entries], "Failed": []})

    def _one(self, request: Any, **_: Any) -> AWSResponse:
        body = json.loads(request.body)["MessageBody"]
        self.continuations.append(body)
        return _json(request, 200, self._answer(str(uuid.uuid4()), body))


class HeldClaims:
    """Claim transactions answered as DynamoDB answers new certificates (all conditions met), not kept."""

    def __init__(self, claims_prefix: str):
        self.prefix = claims_prefix
        self.claims = 0
        self.transactions = 0

    def install(self, dynamodb: Any) -> None:
        _take_over(dynamodb, "before-send.dynamodb", self._answer)

    def _answer(self, request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
        items = json.loads(request.body)["TransactItems"] if event_name.endswith(".TransactWriteItems") else []
        puts = [i.get("Put", {}).get("Item", {}).get("pk", {}).get("S", "") for i in items]
        if not puts or not all(pk.startswith(self.prefix) for pk in puts):
            # not only claims: the table answers it (moto in this process, or the client's endpoint)
            stubber = _moto_stubber()
            return stubber(event_name, request, **kwargs) if stubber is not None else None
        self.claims += len(puts)
        self.transactions += 1
        return _json(request, 200, {}, **{"content-type": "application/x-amz-json-1.0"})
