"""``TransactWriteItems`` idempotent by its ``ClientRequestToken``, as AWS applies it; moto applies every repeat.

AWS (DynamoDB API reference, TransactWriteItems, ``ClientRequestToken``,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html#DDB-TransactWriteItems-request-ClientRequestToken):
"Providing a ClientRequestToken makes the call to TransactWriteItems idempotent, meaning that
multiple identical calls have the same effect as one single call", for "10 minutes after the first
request that uses it is completed"; "a change in other parameters within the 10-minute idempotency
window" is answered ``IdempotentParameterMismatchException``.

botocore fills the token once per call and sends the same one on each of its retries, so a
transaction applied whose answer was lost (a 500 after it applied, a connection dropped) is sent
again and AWS answers it without applying it twice. moto ignores the token and applies the repeat:
a transaction that ADDs to a counter counts twice. Here, under the DynamoDB lock
(:func:`.dynamodb.one_at_a_time`), a transaction with a token that succeeded within the window is
answered again with success and nothing applied; the same token with other items is refused. A
transaction that failed is remembered for nothing (it changed nothing: a repeat is a new attempt).

Always on: this is how DynamoDB answers, not a setting.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

#: AWS's idempotency window for a ``ClientRequestToken``, seconds.
WINDOW_SECONDS = 600.0
TRANSACTION = "TransactWriteItems"


def _digest(params: dict[str, Any]) -> str:
    """What must not change between two calls with one token: every parameter but the token."""
    rest = {k: v for k, v in params.items() if k != "ClientRequestToken"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()


class TransactionTokens:
    """Tokens of the transactions that succeeded in the last :data:`WINDOW_SECONDS`, with their parameters' digest."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, tuple[float, str]] = OrderedDict()  # token -> (completed at, digest)
        #: repeats answered without applying them, and repeats refused for other parameters.
        self.counts = {"repeats": 0, "mismatches": 0}

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
            self.counts = {"repeats": 0, "mismatches": 0}

    def _forget_old(self, now: float) -> None:
        while self._seen and next(iter(self._seen.values()))[0] <= now - WINDOW_SECONDS:
            self._seen.popitem(last=False)

    def around(self, handler: Any, call: Callable[[Any], Any]) -> Any:
        """Answer ``handler``'s request (``call(handler)`` unless it repeats a transaction that succeeded)."""
        if handler._get_action() != TRANSACTION:
            return call(handler)
        params = getattr(handler, "params", None) or {}
        token = params.get("ClientRequestToken")
        if not token:
            return call(handler)
        digest = _digest(params)
        with self._lock:
            now = self.clock()
            self._forget_old(now)
            seen = self._seen.get(token)
            if seen is not None:
                if seen[1] != digest:
                    self.counts["mismatches"] += 1
                    return _mismatch(handler)
                self.counts["repeats"] += 1
                return 200, dict(handler.response_headers), "{}"
        answer = call(handler)
        if answer[0] == 200:
            with self._lock:
                self._seen[token] = (self.clock(), digest)
                self._seen.move_to_end(token)
        return answer


def _mismatch(handler: Any) -> Any:
    """AWS's answer to a token repeated with other parameters, rendered as moto renders its errors."""
    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException

    error = DynamodbException(ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
                              "ClientRequestToken was used in a previous request with different parameters")
    headers = {**handler.response_headers, **dict(error.get_headers()), "status": str(error.code)}
    return error.code, headers, error.description


#: the process's tokens (the emulator's DynamoDB handler; tests reset it).
TOKENS = TransactionTokens()
