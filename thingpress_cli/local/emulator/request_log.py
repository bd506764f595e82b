"""Every request the emulator serves, with the time it took: ``build/local/logs/requests.log``.

One tab-separated line per request when its response is done::

    2026-12-06T02:22:46.123Z  12.4ms  200  lambda  POST /2015-03-31/functions

(start time, time taken, HTTP status, the SigV4 service, and the operation: the
``X-Amz-Target`` of a JSON-protocol call, else the method and path). A request still
unanswered after :data:`SLOW_SECONDS` gets a ``STILL RUNNING`` line, again every
:data:`SLOW_SECONDS`, so a request that hangs (a deploy "Still creating..." for
minutes) is in the log while it hangs, not only when (if ever) it ends.
``thingpress local status`` prints where the logs are.

Lines are written to the file by the watcher thread, every :data:`FLUSH_SECONDS`, not by the
request's own thread: a write is a system call, and a thread that makes one gives up the GIL
and then waits for it again behind the busy ones (up to the interpreter's switch interval, 5 ms).
With a write per request, a fifth of py-spy's samples of the emulator's busy threads in a
pipeline run were in ``RequestLog.write``, paid by every request. The log is behind by at most
:data:`FLUSH_SECONDS`, and what is pending is written at exit.

The file is appended to across emulator runs and rotated by size: once it holds :data:`MAX_BYTES`
it becomes ``requests.log.1`` (replacing the one before) and a new file starts, so that the two
hold the latest requests and the logs stay bounded (an import of a million certificates makes
about eight million requests, some 700 MB of lines).
"""

from __future__ import annotations

import atexit
import itertools
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: the log's file name, in the local cloud's log directory.
FILE_NAME = "requests.log"
#: a request unanswered this long is logged as still running (and again every as long).
SLOW_SECONDS = 10.0
#: how often the pending lines are written to the file.
FLUSH_SECONDS = 0.5
#: the size at which the file is rotated (``requests.log.1``).
MAX_BYTES = 64 * 1024 * 1024
#: the longest path logged (query strings are never logged: they can carry presigned credentials).
MAX_PATH = 160


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def signing_service(environ: dict[str, Any]) -> str | None:
    """The SigV4 service name of a request (``iot``, ``sqs``...), or None if unsigned."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
        return scope.split("/")[3].lower()
    except IndexError:
        return None


def describe(environ: dict[str, Any]) -> tuple[str, str]:
    """(service, operation) of a request, from its signature scope and its target or path."""
    service = signing_service(environ) or "-"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rsplit(".", 1)[-1]
    return service, f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')[:MAX_PATH]}"


class RequestLog:
    """WSGI middleware: times each request and appends its line to ``path``; reports the slow ones."""

    def __init__(self, app: WsgiApp, path: Path, *, clock: Callable[[], float] = time.time,
                 slow_seconds: float = SLOW_SECONDS, max_bytes: int = MAX_BYTES):
        self.app = app
        self.path = path
        self.clock = clock
        self.slow_seconds = slow_seconds
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self._sink = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        #: lines not written yet (:meth:`flush`).
        self._pending: list[str] = []
        self._ids = itertools.count(1)
        #: requests not answered yet: id -> (start, service, operation).
        self.in_flight: dict[int, tuple[float, str, str]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        service, operation = describe(environ)
        number, started = next(self._ids), self.clock()
        self.in_flight[number] = (started, service, operation)
        status = ["-"]

        def remember(code: str, headers: Any, *args: Any) -> Any:
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, *args)

        try:
            body = self.app(environ, remember)
            try:
                return list(body)  # moto answers in memory; the time taken includes the body
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
        except BaseException:
            status[0] = "EXC"
            raise
        finally:
            self.in_flight.pop(number, None)
            self.write(f"{_iso(started)}\t{(self.clock() - started) * 1000:.1f}ms\t{status[0]}\t{service}\t{operation}")

    def write(self, line: str) -> None:
        """Queue ``line`` for the file (no I/O here: see the module docstring)."""
        with self._lock:
            self._pending.append(line + "\n")

    def flush(self) -> None:
        """Write the pending lines to the file."""
        with self._flushing:
            with self._lock:
                lines, self._pending = self._pending, []
            if lines:
                self._sink.write("".join(lines))
                self._sink.flush()
            if self._sink.tell() >= self.max_bytes:
                self._sink.close()
                self.path.replace(self.rotated)
                self._sink = self.path.open("a", encoding="utf-8")

    @property
    def rotated(self) -> Path:
        """Where the file goes once it holds ``max_bytes`` (``requests.log.1``)."""
        return self.path.with_name(self.path.name + ".1")

    def report_slow(self) -> int:
        """Log every request unanswered for ``slow_seconds`` or more; how many there were."""
        now = self.clock()
        slow = [(s, svc, op) for s, svc, op in list(self.in_flight.values()) if now - s >= self.slow_seconds]
        for started, service, operation in slow:
            self.write(f"{_iso(started)}\tSTILL RUNNING after {now - started:.0f} s\t-\t{service}\t{operation}")
        return len(slow)

    def watch(self) -> threading.Thread:
        """Start the daemon thread that writes the pending lines every :data:`FLUSH_SECONDS` and calls
        :meth:`report_slow` every ``slow_seconds``; what is pending at exit is written then."""
        atexit.register(self.flush)

        def loop() -> None:
            since_report = 0.0
            while True:
                time.sleep(FLUSH_SECONDS)
                since_report += FLUSH_SECONDS
                if since_report >= self.slow_seconds:
                    since_report = 0.0
                    self.report_slow()
                self.flush()

        thread = threading.Thread(target=loop, name="request-log-watch", daemon=True)
        thread.start()
        return thread
