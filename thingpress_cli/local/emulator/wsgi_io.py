"""WSGI helpers the emulator's layers share: read a request body (and put it back), answer JSON."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


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
