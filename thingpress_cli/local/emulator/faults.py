"""Fault injection in the emulator: the failures AWS can answer, on demand (``make chaos``).

Off by default. ``POST /moto-api/thingpress/faults`` with a JSON body sets the
rates (``{}`` switches everything off); ``GET`` shows them and how many faults
were injected so far. Each fault is one AWS really produces:

* ``error_after_write`` (probability per request): a DynamoDB or SQS *write* is
  applied, then answered ``500 InternalServerError`` / ``InternalError``. The
  SDK retries it: the ambiguous success (the write happened, the caller was told
  it did not) that conditional writes and at-least-once delivery must survive.
* ``partial_batch`` (probability per ``SendMessageBatch``): some entries (at
  least one, at random) are not sent and come back in ``Failed`` with
  ``SenderFault: false`` and ``Code: InternalError``; the others are sent.
* ``throttle`` (``{"every": s, "length": s, "share": p}``): during the first
  ``length`` seconds of every ``every`` seconds, a share ``p`` of IoT and
  DynamoDB requests is answered ``ThrottlingException`` (400), as a burst of
  throttling from the service.

Requests the extension answers itself and non-JSON protocols pass through. The
random source is seeded (``seed``), so a run's faults can be replayed.
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

#: Path of the fault endpoint on the emulator.
FAULTS_PATH = "/moto-api/thingpress/faults"
#: Writes that get ``error_after_write``, by SigV4 service name.
WRITES = {
    "dynamodb": frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}),
    "sqs": frozenset({"SendMessage", "SendMessageBatch", "DeleteMessage", "DeleteMessageBatch",
                      "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"}),
}
THROTTLED_SERVICES = frozenset({"iot", "dynamodb"})
KINDS = ("error_after_write", "partial_batch", "throttle")

StartResponse = Callable[..., Any]
Forward = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def json_target(environ: dict[str, Any]) -> str | None:
    """The operation of a JSON-protocol request (``X-Amz-Target: DynamoDB_20120810.PutItem``)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return target.rsplit(".", 1)[1] if "." in target else None


def _answer(start_response: StartResponse, status: str, payload: dict[str, Any],
            headers: dict[str, str] | None = None) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body))),
                            *(headers or {}).items()])
    return [body]


class Faults:
    """The fault rates, the seeded random source and the counts of injected faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(0)
        self._started = time.monotonic()
        self.settings: dict[str, Any] = {}
        self.counts = dict.fromkeys(KINDS, 0)

    @property
    def active(self) -> bool:
        return bool(self.settings)

    def configure(self, settings: dict[str, Any]) -> None:
        """Replace the settings (validated); ``{}`` switches fault injection off. Counts are kept."""
        unknown = set(settings) - {*KINDS, "seed"}
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        for key in ("error_after_write", "partial_batch"):
            if key in settings and not 0 <= float(settings[key]) <= 1:
                raise ValueError(f"{key} is a probability (0..1), not {settings[key]}")
        throttle = settings.get("throttle")
        if throttle is not None:
            every, length, share = float(throttle["every"]), float(throttle["length"]), float(throttle["share"])
            if not (every > 0 and 0 <= length <= every and 0 <= share <= 1):
                raise ValueError("throttle needs every > 0, 0 <= length <= every and a share in 0..1")
        with self._lock:
            self.settings = {k: v for k, v in settings.items() if k != "seed"}
            self._random = random.Random(settings.get("seed", 0))
            self._started = time.monotonic()

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {"settings": dict(self.settings), "counts": dict(self.counts), "total": sum(self.counts.values())}

    def _roll(self, kind: str) -> bool:
        with self._lock:
            rate = float(self.settings.get(kind) or 0)
            hit = rate > 0 and self._random.random() < rate
            if hit:
                self.counts[kind] += 1
            return hit

    def _throttled(self) -> bool:
        with self._lock:
            burst = self.settings.get("throttle")
            if not burst:
                return False
            in_burst = (time.monotonic() - self._started) % float(burst["every"]) < float(burst["length"])
            hit = in_burst and self._random.random() < float(burst["share"])
            if hit:
                self.counts["throttle"] += 1
            return hit

    def _failed_ids(self, ids: list[str]) -> set[str]:
        with self._lock:
            return set(self._random.sample(ids, self._random.randint(1, len(ids))))

    def apply(self, service: str | None, environ: dict[str, Any], start_response: StartResponse,
              forward: Forward) -> Iterable[bytes]:
        """Answer one request, with a fault or through ``forward`` (the emulator without faults)."""
        operation = json_target(environ) if service in ("dynamodb", "sqs") else None
        if service in THROTTLED_SERVICES and self._throttled():
            return self._throttle(service, start_response)
        if service == "sqs" and operation == "SendMessageBatch" and self._roll("partial_batch"):
            return self._partial_batch(environ, start_response, forward)
        if operation in WRITES.get(service or "", ()) and self._roll("error_after_write"):
            list(forward(environ, lambda *args: (lambda data: None)))  # applied ...
            if service == "dynamodb":  # ... and answered as failed
                return _answer(start_response, "500 Internal Server Error", {
                    "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                    "message": "Internal server error (thingpress fault injection: the write was applied)"})
            return _answer(start_response, "500 Internal Server Error", {
                "__type": "InternalError",
                "message": "We encountered an internal error. (thingpress fault injection: the write was applied)"})
        return forward(environ, start_response)

    @staticmethod
    def _throttle(service: str, start_response: StartResponse) -> list[bytes]:
        if service == "dynamodb":
            return _answer(start_response, "400 Bad Request", {
                "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                "message": "Rate of requests exceeds the allowed throughput."})
        return _answer(start_response, "400 Bad Request", {"message": "Rate exceeded"},
                       {"x-amzn-ErrorType": "ThrottlingException"})

    def _partial_batch(self, environ: dict[str, Any], start_response: StartResponse, forward: Forward) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        entries = request.get("Entries") or []
        failed_ids = self._failed_ids([e["Id"] for e in entries]) if entries else set()
        failed = [{"Id": i, "SenderFault": False, "Code": "InternalError",
                   "Message": "thingpress fault injection: entry not sent"} for i in sorted(failed_ids)]
        kept = [e for e in entries if e["Id"] not in failed_ids]
        if not kept:
            return _answer(start_response, "200 OK", {"Successful": [], "Failed": failed})
        body = json.dumps({**request, "Entries": kept}).encode()
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        captured: dict[str, Any] = {}

        def hold(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            captured.update(status=status, headers=headers)
            return lambda data: None

        answer = b"".join(forward(environ, hold))
        if not captured["status"].startswith("200"):
            start_response(captured["status"], captured["headers"])
            return [answer]
        result = json.loads(answer)
        result["Failed"] = list(result.get("Failed") or []) + failed
        return _answer(start_response, "200 OK", result)
