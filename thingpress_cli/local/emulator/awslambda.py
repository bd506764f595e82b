"""Lambda as the runner needs it: no Docker, and the deployed zips downloadable.

* **No Docker.** moto's Lambda would run a function in a container; the thingpress
  runner (:mod:`thingpress_cli.local.runner`) runs the deployed code instead, so
  ``lambda.use_docker`` is off (moto then keeps the code as bytes: ``lambda_simple``).
* **Downloadable Lambda code.** AWS answers ``GetFunction`` with ``Code.Location``
  and ``GetLayerVersion`` with ``Content.Location``, presigned URLs of the
  deployed zips; moto gives placeholders. :class:`LambdaCode` rewrites them to
  ``/moto-api/thingpress/lambda-code?arn=...`` on the emulator, which serves the
  bytes moto stored, so the runner downloads the deployed code as from AWS.
* **The logging configuration kept.** Lambda answers ``GetFunction`` (and every configuration) with the
  function's ``LoggingConfig``: the format and log group it was given, else ``Text`` into
  ``/aws/lambda/<name>``, and with ``JSON`` both log levels ``INFO`` unless set (API reference,
  ``LoggingConfig``: "ApplicationLogLevel ... default INFO", "SystemLogLevel ... default INFO"; developer
  guide, "Configuring advanced logging controls"). moto drops it, so Terraform, which reads it back,
  found every function's ``logging_config`` missing and updated all eight on every ``local up``.
  :func:`keep_logging_config` keeps what ``CreateFunction`` and ``UpdateFunctionConfiguration`` set.

* **One mapping per queue and function.** Lambda refuses a second ``CreateEventSourceMapping`` of
  the same SQS queue to the same function: 409 ``ResourceConflictException``, "An event source
  mapping with SQS arn (" <queue arn> ") and function (" <name> ") already exists. Please update
  or delete the existing mapping with UUID <uuid>" (CreateEventSourceMapping API reference,
  https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html, Errors:
  ResourceConflictException; the message as AWS words it, quoted in hashicorp/terraform-provider-aws#40257
  and aws/chalice#2146). moto's check compares with the literal key ``"func.function_arn"`` and never
  refuses: a deploy whose answer to a create was lost (:mod:`thingpress_cli.local.lost_creates`) sent
  it again and got a second mapping, which Terraform never knew and the runner polled too.
  :func:`one_mapping_per_queue` refuses it as Lambda does.

(Turning off moto's own SQS->Lambda delivery is an SQS patch: :mod:`.sqs`.)
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import Any

from moto.core.request import Request

from thingpress.arns import Arn
from thingpress_cli.local.emulator.guard import Patched
from thingpress_cli.local.emulator.wsgi_io import StartResponse, WsgiApp, json_response

#: Where the deployed zips of functions and layer versions are served from.
CODE_PATH = "/moto-api/thingpress/lambda-code"
_GET_FUNCTION = re.compile(r"^/2015-03-31/functions/[^/]+/?$")
_GET_LAYER_VERSION = re.compile(r"^/2018-10-31/layers/[^/]+/versions/\d+/?$")

PATCHED = (
    Patched("moto.core.config", "default_user_config"),
    Patched("moto.awslambda.models", "LambdaFunction.__init__", ("self", "account_id", "spec", "region", "version")),
    Patched("moto.awslambda.models", "LambdaFunction.get_configuration", ("self", "on_create")),
    Patched("moto.awslambda.models", "LambdaFunction.update_configuration", ("self", "config_updates")),
    Patched("moto.awslambda.models", "LambdaBackend.create_event_source_mapping", ("self", "spec")),
)

#: the log levels Lambda sets when the format is JSON and a level is not given.
JSON_LOG_LEVEL = "INFO"


def logging_config(given: dict[str, Any] | None, function_name: str, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``LoggingConfig`` Lambda answers after ``given`` (``before``: the function's until now)."""
    config = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{function_name}", **(before or {}), **(given or {})}
    if config["LogFormat"] == "JSON":
        config.setdefault("ApplicationLogLevel", JSON_LOG_LEVEL)
        config.setdefault("SystemLogLevel", JSON_LOG_LEVEL)
    else:  # the levels apply to JSON logs only
        config.pop("ApplicationLogLevel", None)
        config.pop("SystemLogLevel", None)
    return config


class LambdaCode:
    """Downloadable ``Code.Location`` / ``Content.Location`` for the deployed zips."""

    @staticmethod
    def wants(environ: dict[str, Any]) -> bool:
        path = environ.get("PATH_INFO", "")
        return environ.get("REQUEST_METHOD") == "GET" and bool(_GET_FUNCTION.match(path) or _GET_LAYER_VERSION.match(path))

    @staticmethod
    def rewrite(environ: dict[str, Any], app: WsgiApp, start_response: StartResponse) -> Iterable[bytes]:
        """Call moto, then point the answer's code location at this emulator."""
        captured: dict[str, Any] = {}

        def hold(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            captured.update(status=status, headers=headers)
            return lambda data: None

        body = b"".join(app(environ, hold))
        status, headers = captured["status"], captured["headers"]
        if status.startswith("200"):
            answer = json.loads(body)
            base = f"http://{environ.get('HTTP_HOST', 'localhost')}{CODE_PATH}?arn="
            if isinstance(answer.get("Code"), dict) and "FunctionArn" in answer.get("Configuration", {}):
                answer["Code"]["Location"] = base + answer["Configuration"]["FunctionArn"]
            if isinstance(answer.get("Content"), dict) and "LayerVersionArn" in answer:
                answer["Content"]["Location"] = base + answer["LayerVersionArn"]
            body = json.dumps(answer).encode()
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"] + [("Content-Length", str(len(body)))]
        start_response(status, headers)
        return [body]

    @staticmethod
    def serve(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """The zip of a function (by function ARN) or layer version (by layer version ARN)."""
        from moto.awslambda.utils import get_backend

        arn = Request(environ).args.get("arn", "")
        try:
            parsed: Arn | None = Arn.parse(arn)
        except ValueError:
            parsed = None
        code: bytes | None = None
        if parsed is not None and parsed.service == "lambda" and parsed.resource_name:
            backend = get_backend(parsed.account, parsed.region)  # lambda_simple: use_docker is off
            try:
                if parsed.resource_type == "function":
                    code = backend.get_function(parsed.resource_name).code_bytes
                elif parsed.resource_type == "layer":
                    found = backend.layers_versions_by_arn(arn)
                    code = found.code_bytes if found is not None else None
            except Exception:  # noqa: BLE001 - moto's not-found errors differ by resource
                code = None
        if not code:
            return json_response(start_response, "404 Not Found", {"message": f"no deployed code for {arn!r}"})
        start_response("200 OK", [("Content-Type", "application/zip"), ("Content-Length", str(len(code)))])
        return [code]


def keep_logging_config(function_class: type) -> None:
    """moto's ``LambdaFunction`` keeps its ``LoggingConfig`` and answers it as Lambda does."""
    init, configuration, update = (function_class.__init__, function_class.get_configuration,
                                   function_class.update_configuration)

    @functools.wraps(init)
    def created(self: Any, account_id: str, spec: dict[str, Any], region: str, version: str | int = 1) -> None:
        init(self, account_id, spec, region, version)
        self.logging_config = logging_config(spec.get("LoggingConfig"), self.function_name)

    @functools.wraps(configuration)
    def answered(self: Any, on_create: bool = False) -> dict[str, Any]:
        return {**configuration(self, on_create),
                "LoggingConfig": dict(getattr(self, "logging_config", None) or logging_config(None, self.function_name))}

    @functools.wraps(update)
    def updated(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        if "LoggingConfig" in config_updates:
            self.logging_config = logging_config(config_updates["LoggingConfig"], self.function_name,
                                                 getattr(self, "logging_config", None))
        return update(self, config_updates)

    function_class.__init__ = created  # type: ignore[method-assign]
    function_class.get_configuration = answered  # type: ignore[method-assign]
    function_class.update_configuration = updated  # type: ignore[method-assign]


def duplicate_mapping_message(queue_arn: str, function_name: str, uuid: str) -> str:
    """Lambda's refusal of a second mapping of one SQS queue to one function (see the module)."""
    return (f'An event source mapping with SQS arn (" {queue_arn} ") and function (" {function_name} ") already '
            f"exists. Please update or delete the existing mapping with UUID {uuid}")


def one_mapping_per_queue(backend_class: type) -> None:
    """``CreateEventSourceMapping`` refuses a second mapping of an SQS queue to the same function."""
    from moto.awslambda.exceptions import LambdaClientError

    class MappingExists(LambdaClientError):
        code = 409

    create = backend_class.create_event_source_mapping

    @functools.wraps(create)
    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        source = spec.get("EventSourceArn") or ""
        if source.startswith("arn:aws:sqs:") and spec.get("FunctionName"):
            function = self._lambdas.get_function_by_name_or_arn_with_qualifier(spec["FunctionName"])
            for mapping in self._event_source_mappings.values():
                if mapping.event_source_arn == source and mapping.function_arn == function.function_arn:
                    raise MappingExists("ResourceConflictException", duplicate_mapping_message(
                        source, function.function_name, mapping.uuid))
        return create(self, spec)

    backend_class.create_event_source_mapping = create_event_source_mapping  # type: ignore[method-assign]


def install() -> None:
    """No Docker: moto keeps the deployed code, the runner runs it; functions keep their logging configuration;
    one event source mapping per queue and function."""
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.core.config import default_user_config

    default_user_config["lambda"] = {"use_docker": False}
    keep_logging_config(LambdaFunction)
    one_mapping_per_queue(LambdaBackend)
