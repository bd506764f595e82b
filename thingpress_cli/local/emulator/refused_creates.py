"""``CreateFunction`` calls refused because the function exists, remembered by name for the deployer.

A deploy whose answer to a ``CreateFunction`` was lost sends the call again, and the emulator
answers it 409 ``ResourceConflictException`` ("Function already exist"), as Lambda does
(CreateFunction API reference, Errors: "ResourceConflictException ... The resource already
exists, or another operation is in progress"). Terraform's provider then retries that answer
for five minutes and fails (:mod:`thingpress_cli.local.lost_creates`). The emulator still
answers as AWS does; it only remembers which function was refused, in order, so that
``thingpress local up`` can see the refusal while its deploy waits
(``GET /moto-api/thingpress/lambda/refused-creates``: ``{"refused": [name, ...]}``).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from thingpress_cli.local.emulator.wsgi_io import StartResponse, WsgiApp, json_response, read_body

#: Where the refused creates are listed (GET).
REFUSED_CREATES_PATH = "/moto-api/thingpress/lambda/refused-creates"
_CREATE_FUNCTION = re.compile(r"^/2015-03-31/functions/?$")


class RefusedCreates:
    """The names of the functions whose ``CreateFunction`` was answered 409, oldest first."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._lock = threading.Lock()

    @staticmethod
    def wants(environ: dict[str, Any]) -> bool:
        """A ``CreateFunction`` call (``POST /2015-03-31/functions``)."""
        return environ.get("REQUEST_METHOD") == "POST" and bool(_CREATE_FUNCTION.match(environ.get("PATH_INFO", "")))

    def observe(self, environ: dict[str, Any], app: WsgiApp, start_response: StartResponse) -> list[bytes]:
        """Call moto; remember the function's name when it answers 409."""
        request = read_body(environ)
        statuses: list[str] = []

        def remember(status: str, headers: Any, *args: Any) -> Any:
            statuses.append(status)
            return start_response(status, headers, *args)

        answer = list(app(environ, remember))
        if statuses and statuses[0].startswith("409"):
            name = str(json.loads(request or b"{}").get("FunctionName", ""))
            with self._lock:
                self._names.append(name)
        return answer

    def names(self) -> list[str]:
        with self._lock:
            return list(self._names)

    def endpoint(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        return json_response(start_response, "200 OK", {"refused": self.names()})
