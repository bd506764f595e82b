"""The WSGI layer in front of moto's application: IoT tags, Lambda code, quota mode, fault injection, control endpoints.

:func:`install` applies the one patch set (:func:`.patches.apply`) and wraps moto's
application in :class:`Extension`, which answers before moto:

* the IoT tag APIs moto lacks (:mod:`.iot_tags`), and the deployed zips of functions
  and layers (:mod:`.awslambda`);
* **quota mode**: optional per-operation IoT token buckets (:mod:`.quota`), changeable
  at runtime through ``/moto-api/thingpress/quotas``; Service Quotas' ``GetServiceQuota``
  answers their rates as the account's IoT Core quotas (:mod:`.servicequotas`);
* **fault injection** (:mod:`.faults`, off by default): 500 after an applied DynamoDB or
  SQS write, partial ``SendMessageBatch`` failures, throttling bursts; set and counted at
  ``/moto-api/thingpress/faults`` (``make chaos``);
* the control endpoints: the settings of the IoT deletion rules and the detach propagation
  (``/moto-api/thingpress/settings``, :class:`.iot_deletion.DeletionRules`), the transaction
  conflicts (:mod:`.conflicts`) and the index lag (:mod:`.index_lag`);
* **usage**: every request counted as billed, DynamoDB request units metered
  (:mod:`.usage`, ``/moto-api/thingpress/usage``);
* the ``CreateFunction`` calls refused as existing, by name (:mod:`.refused_creates`), which
  ``thingpress local up`` watches while it deploys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from thingpress_cli.local.emulator import patches, servicequotas
from thingpress_cli.local.emulator.awslambda import CODE_PATH, LambdaCode
from thingpress_cli.local.emulator.conflicts import CONFLICTS_PATH, HOLDS
from thingpress_cli.local.emulator.faults import FAULTS_PATH, Faults
from thingpress_cli.local.emulator.index_lag import LAG_PATH, endpoint as index_lag_endpoint
from thingpress_cli.local.emulator.iot_deletion import DeletionRules
from thingpress_cli.local.emulator.iot_tags import TAG_OPERATIONS, IotTags, iot_operation, may_need_tags
from thingpress_cli.local.emulator.quota import Quotas
from thingpress_cli.local.emulator.refused_creates import REFUSED_CREATES_PATH, RefusedCreates
from thingpress_cli.local.emulator.request_log import signing_service
from thingpress_cli.local.emulator.usage import USAGE_PATH, count_request, usage_endpoint
from thingpress_cli.local.emulator.wsgi_io import StartResponse, WsgiApp, json_response, read_body

#: Path of the runtime quota endpoint (GET shows, POST replaces the rates).
QUOTA_PATH = "/moto-api/thingpress/quotas"
#: Path of the emulator settings endpoint (GET shows, POST changes; see :class:`.DeletionRules`).
SETTINGS_PATH = "/moto-api/thingpress/settings"


class Extension:
    """WSGI layer in front of moto: IoT tags, Lambda code locations, quota mode, and the control endpoints."""

    def __init__(self, app: WsgiApp, quotas: Quotas | None = None, rules: DeletionRules | None = None) -> None:
        self.app = app
        self.quotas = quotas or Quotas()
        self.rules = rules or DeletionRules()
        self.faults = Faults()
        self.tags = IotTags()
        self.refused = RefusedCreates()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == QUOTA_PATH:
            return self._quota_endpoint(environ, start_response)
        if environ.get("PATH_INFO") == SETTINGS_PATH:
            return self._settings_endpoint(environ, start_response)
        if environ.get("PATH_INFO") == FAULTS_PATH:
            return self._faults_endpoint(environ, start_response)
        if environ.get("PATH_INFO") == CONFLICTS_PATH:
            return self._conflicts_endpoint(environ, start_response)
        if environ.get("PATH_INFO") == CODE_PATH:
            return LambdaCode.serve(environ, start_response)
        if environ.get("PATH_INFO") == LAG_PATH:
            return index_lag_endpoint(environ, start_response)
        if environ.get("PATH_INFO") == USAGE_PATH:
            return usage_endpoint(environ, start_response)
        if environ.get("PATH_INFO") == REFUSED_CREATES_PATH:
            return self.refused.endpoint(environ, start_response)
        count_request(environ)
        service = signing_service(environ)
        if self.faults.active:
            return self.faults.apply(service, environ, start_response, lambda env, start: self._serve(service, env, start))
        return self._serve(service, environ, start_response)

    def _serve(self, service: str | None, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if service == "lambda" and LambdaCode.wants(environ):
            return LambdaCode.rewrite(environ, self.app, start_response)
        if service == "lambda" and RefusedCreates.wants(environ):
            return self.refused.observe(environ, self.app, start_response)
        if service != "iot" or not (self.quotas.rates or may_need_tags(environ)):
            return self.app(environ, start_response)
        operation = iot_operation(environ)
        if operation is None:
            return self.app(environ, start_response)
        if not self.quotas.acquire(operation):
            return json_response(
                start_response,
                "400 Bad Request",
                {"message": f"Rate exceeded for {operation}"},
                {"x-amzn-ErrorType": "ThrottlingException"},
            )
        if operation in TAG_OPERATIONS:
            return self.tags.handle(operation, environ, start_response)
        if operation.startswith("Create"):
            return self._create_capturing_tags(environ, start_response)
        return self.app(environ, start_response)

    def _create_capturing_tags(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request_body = read_body(environ)
        status: list[str] = []

        def remember(code: str, headers: Any, *args: Any) -> Any:
            status.append(code)
            return start_response(code, headers, *args)

        chunks = list(self.app(environ, remember))
        if status and status[0].startswith("200"):
            self.tags.capture(request_body, b"".join(chunks))
        return chunks

    def _quota_endpoint(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                self.quotas.configure(json.loads(read_body(environ) or b"{}"))
            except (ValueError, TypeError) as error:
                return json_response(start_response, "400 Bad Request", {"message": str(error)})
        return json_response(start_response, "200 OK", {"rates": self.quotas.rates})

    def _settings_endpoint(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                self.rules.configure(json.loads(read_body(environ) or b"{}"))
            except (ValueError, TypeError) as error:
                return json_response(start_response, "400 Bad Request", {"message": str(error)})
        return json_response(start_response, "200 OK", self.rules.as_dict())

    def _faults_endpoint(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                self.faults.configure(json.loads(read_body(environ) or b"{}"))
            except (ValueError, TypeError, KeyError) as error:
                return json_response(start_response, "400 Bad Request", {"message": str(error)})
        return json_response(start_response, "200 OK", self.faults.report())

    @staticmethod
    def _conflicts_endpoint(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                HOLDS.configure(json.loads(read_body(environ) or b"{}"))
            except (ValueError, TypeError) as error:
                return json_response(start_response, "400 Bad Request", {"message": str(error)})
        return json_response(start_response, "200 OK", HOLDS.report())


def install(app: WsgiApp, quotas: Quotas | None = None, rules: DeletionRules | None = None) -> Extension:
    """Patch moto (the one patch set) and wrap its WSGI application; returns the application to serve."""
    rules = patches.apply(rules)
    extension = Extension(app, quotas, rules)
    servicequotas.answer_from(extension.quotas)  # GetServiceQuota answers the quota mode's rates
    return extension
