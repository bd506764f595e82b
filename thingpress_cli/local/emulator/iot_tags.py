"""IoT resource tags, which moto's IoT lacks, answered in front of moto.

moto's IoT has no ``TagResource``, ``UntagResource`` or ``ListTagsForResource``;
the Terraform AWS provider calls them for ``aws_iot_policy``, ``aws_iot_thing_type``
and ``aws_iot_thing_group`` and retries a 500 for minutes. :class:`IotTags` answers
them from a per-ARN store, which also keeps the ``tags`` sent with a ``Create*``
call (as AWS does). :class:`.wsgi.Extension` routes the requests here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from moto.core.request import Request
from moto.core.routing import get_service_router

from thingpress_cli.local.emulator.wsgi_io import StartResponse, json_response, read_body

#: IoT operations answered here instead of by moto.
TAG_OPERATIONS = frozenset({"TagResource", "UntagResource", "ListTagsForResource"})


def iot_operation(environ: dict[str, Any]) -> str | None:
    """The IoT operation a REST request targets (``RegisterCertificateWithoutCA``...)."""
    try:
        operation, _ = get_service_router("iot").match(Request(environ, shallow=True))
    except Exception:  # noqa: BLE001 - werkzeug NotFound/MethodNotAllowed: not an IoT operation
        return None
    return str(operation.name)


def may_need_tags(environ: dict[str, Any]) -> bool:
    """Whether an IoT request may be one the tag store answers or watches, without routing it.

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
