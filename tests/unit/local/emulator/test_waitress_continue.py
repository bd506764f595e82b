"""An empty request that expects 100 (Continue) is answered (waitress kept it incomplete for 300 s)."""

from __future__ import annotations

import socket
import threading

import pytest
from waitress.server import create_server

from thingpress_cli.local.emulator import waitress_continue


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


@pytest.fixture
def server():
    waitress_continue.install()
    server = create_server(_app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield int(server.effective_port)
    server.close()


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
