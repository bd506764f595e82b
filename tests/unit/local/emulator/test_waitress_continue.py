"""waitress as the emulator runs it: an empty request that expects 100 (Continue) is answered (waitress kept
it incomplete for 300 s), and an answer leaves in one send."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from waitress import wasyncore
from waitress.server import create_server

from thingpress_cli.local.emulator import waitress_continue, waitress_one_send


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def _answer(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(request)
        got = b""
        while b"\r\n\r\nok" not in got:
            chunk = conn.recv(4096)
            if not chunk:
                break
            got += chunk
        return got


@contextlib.contextmanager
def _serving(**settings) -> Iterator[int]:
    """A waitress server (``settings``) on its own loop, closed by that loop's thread once the test is done.

    Closing it from the test's thread while the loop waits in ``select`` on its socket made the
    loop's next ``select`` fail (``OSError: [Errno 9] Bad file descriptor``), reported later as an
    unhandled thread exception in whichever test then ran on that worker.
    """
    channels: dict = {}
    server = create_server(_app, map=channels, host="127.0.0.1", port=0, **settings)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            wasyncore.loop(timeout=0.05, map=channels, count=1)
        server.close()
        server.task_dispatcher.shutdown()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)
    finally:
        done.set()
        thread.join(5)
    assert not thread.is_alive()


@pytest.fixture
def server():
    """A waitress server with the ``Expect: 100-continue`` patch."""
    waitress_continue.install()
    with _serving(threads=2) as port:
        yield port


EMPTY_PUT = (b"PUT /bucket/errors.jsonl HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
             b"Content-Length: 0\r\n\r\n")


def test_an_empty_put_expecting_continue_is_answered(server):
    answer = _answer(server, EMPTY_PUT)  # without the patch: no answer (socket.timeout after 5 s)
    assert b"200 OK" in answer and answer.endswith(b"ok")


def test_a_put_with_a_body_still_gets_its_continue_then_its_answer(server):
    with socket.create_connection(("127.0.0.1", server), timeout=5) as conn:
        conn.sendall(b"PUT /bucket/results.jsonl HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                     b"Content-Length: 3\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 100 Continue")
        conn.sendall(b"abc")
        got = b""
        while not got.endswith(b"ok"):
            got += conn.recv(4096)
        assert b"200 OK" in got


def test_an_answer_goes_out_in_one_send(monkeypatch):
    """Head and body in one send (``waitress_one_send``): waitress sent the head alone and the body after it,
    and Terraform's provider sometimes closed the connection between the two. Without the patch: two sends."""
    from waitress.channel import HTTPChannel

    from thingpress_cli.local.emulator.server import WAITRESS_SETTINGS

    sent: list[bytes] = []
    send = HTTPChannel.send

    def recording(self, data, *args, **kwargs):
        sent.append(bytes(data))
        return send(self, data, *args, **kwargs)

    monkeypatch.setattr(HTTPChannel, "send", recording)
    waitress_one_send.install()
    with _serving(**WAITRESS_SETTINGS) as port:
        answer = _answer(port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\nok")
    assert sent == [answer]  # one send: the head and the body together
