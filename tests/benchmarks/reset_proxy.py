"""A TCP proxy in front of the emulator that loses one answer: the first ``CreateFunction``'s connection is reset.

What a deploy met in issue 22, finding 11: the emulator applied a ``CreateFunction`` and answered
201, the client never read the answer and sent the call again about 0.1 s later. Here the proxy
forwards the call, and when the answer comes back it resets the client's connection instead
(``SO_LINGER`` 0: an RST), so the client sees the connection fail after the create was applied.
Every other byte is forwarded as it comes.
"""

from __future__ import annotations

import socket
import struct
import threading

CREATE_FUNCTION = b"POST /2015-03-31/functions "


class ResetProxy:
    """``with ResetProxy(port) as proxy``: ``proxy.url`` forwards to 127.0.0.1:``port``; ``proxy.resets``
    counts the answers lost (at most one)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.resets = 0
        self._lost = threading.Lock()  # held by the connection that loses the answer
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def __enter__(self) -> ResetProxy:
        threading.Thread(target=self._accept, name="reset-proxy", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # closed: the proxy's work is done
                return
            upstream = socket.create_connection(self.upstream)
            creating = threading.Event()
            threading.Thread(target=self._requests, args=(client, upstream, creating), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client, creating), daemon=True).start()

    @staticmethod
    def _requests(client: socket.socket, upstream: socket.socket, creating: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                if data.startswith(CREATE_FUNCTION):
                    creating.set()
                upstream.sendall(data)
        except OSError:
            pass  # the other direction reset or closed the connection
        finally:
            _shut(upstream)

    def _answers(self, upstream: socket.socket, client: socket.socket, creating: threading.Event) -> None:
        try:
            while data := upstream.recv(65536):
                if creating.is_set() and self._lost.acquire(blocking=False):  # never released: one reset
                    self.resets += 1
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    _shut(client)
                    client.close()
                    return
                creating.clear()
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client)
            upstream.close()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed
