"""Service Quotas answers IoT Core's request-rate quotas with the quota mode's rates (:mod:`.quota`).

AWS (Service Quotas API reference, GetServiceQuota,
https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_GetServiceQuota.html):
"Retrieves the applied quota value for the specified account-level or resource-level quota. [...]
If the applied quota value is not available for a quota, the quota is not retrieved"
(``NoSuchResourceException``). The answer is ``{"Quota": ServiceQuota}``, whose fields are those of
the ServiceQuota data type
(https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_ServiceQuota.html): the
service and quota codes and names, ``QuotaArn``, ``Value``, ``Unit``, ``Adjustable``,
``GlobalQuota`` and, for a rate, ``Period`` (``{"PeriodValue": 1, "PeriodUnit": "SECOND"}``).

moto 5.2 (``ServiceQuotasBackend.get_service_quota``) knows the ``vpc`` service only: every
other code answers ``NoSuchResourceException``. Here the IoT Core codes of the importer's APIs
(``thingpress.iot_quotas``, service code ``iotcore``) answer the rate the emulator's quota mode
throttles that API at (its own rate, else ``"*"``): what the account's quota *is* on the local
cloud. With no rate for it (the quota mode off) the value is "not available": moto's own
``NoSuchResourceException``, and a caller falls back to AWS's defaults as it would on AWS.

The quota mode in force is the one :func:`answer_from` names: the emulator's (``wsgi.install``
names its :class:`.quota.Quotas`, which ``/moto-api/thingpress/quotas`` changes at run time), or
in-process a test's own. Until then: none (every rate unavailable).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from thingpress.iot_quotas import IOT_API_QUOTAS, SERVICE_CODE, api_of
from thingpress_cli.local.emulator.guard import Patched
from thingpress_cli.local.emulator.quota import Quotas

#: The moto internals this module wraps, with moto's parameters (checked by :func:`.guard.check`).
PATCHED = (Patched("moto.servicequotas.models", "ServiceQuotasBackend.get_service_quota",
                   ("self", "service_code", "quota_code")),)

#: The quota mode whose rates are the account's quotas (:func:`answer_from`).
_in_force: list[Quotas] = [Quotas()]


def answer_from(quotas: Quotas) -> None:
    """Answer ``GetServiceQuota`` from ``quotas``' rates from now on (the emulator's quota mode, or a test's)."""
    _in_force[0] = quotas


def rate_of(quotas: Quotas, api: str) -> float | None:
    """The requests per second ``quotas`` allows ``api`` (None: no limit, the quota mode is off for it)."""
    return quotas.rates.get(api, quotas.rates.get("*"))


def service_quota(backend: Any, api: str, value: float) -> dict[str, Any]:
    """The ServiceQuota document of ``api``'s request-rate quota at ``value`` requests per second."""
    quota = IOT_API_QUOTAS[api]
    return {
        "ServiceCode": SERVICE_CODE, "ServiceName": "AWS IoT Core", "QuotaCode": quota.code, "QuotaName": quota.name,
        "QuotaArn": f"arn:aws:servicequotas:{backend.region_name}:{backend.account_id}:{SERVICE_CODE}/{quota.code}",
        "Value": value, "Unit": "None", "Adjustable": True, "GlobalQuota": False,
        "Period": {"PeriodValue": 1, "PeriodUnit": "SECOND"},
    }


def with_iot_rates(get_service_quota: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """``ServiceQuotasBackend.get_service_quota`` that answers the importer's IoT Core quotas from the quota mode."""

    @functools.wraps(get_service_quota)
    def _get_service_quota(self: Any, service_code: str, quota_code: str) -> dict[str, Any]:
        api = api_of(quota_code) if service_code == SERVICE_CODE else None
        if api is not None and (value := rate_of(_in_force[0], api)) is not None:
            return service_quota(self, api, value)
        return get_service_quota(self, service_code, quota_code)  # moto: NoSuchResourceException

    return _get_service_quota


def install() -> None:
    """Apply the rule to moto's Service Quotas (the emulator's and the in-process fixtures')."""
    from moto.servicequotas.models import ServiceQuotasBackend

    ServiceQuotasBackend.get_service_quota = with_iot_rates(  # type: ignore[method-assign]
        ServiceQuotasBackend.get_service_quota)
