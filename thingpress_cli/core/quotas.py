"""The quota check: the deployed IoT budget against the account's quotas for the importer's APIs.

For each IoT API the importer calls (``thingpress.iot_quotas``), the account's quota is read
with Service Quotas ``GetServiceQuota`` (service code ``iotcore``; the operator's credentials
need ``servicequotas:GetServiceQuota``). Service Quotas has no value for some quotas: "If the
applied quota value is not available for a quota, the quota is not retrieved" (API reference,
GetServiceQuota), answered ``NoSuchResourceException``; then, and when the operator may not
read quotas (``AccessDeniedException``), the quota is AWS's default from the dated table
(``thingpress.iot_quotas``), and says so (``source``). Any other error is an AWS error.

The budget is the importer's ``THINGPRESS_IOT_TPS`` as deployed (``FunctionSettings.iot_tps``):
requests per second for the whole account, split between the importer's instances. A budget
above its quota gets a warning (every call beyond the quota is throttled: the import then runs
at the quota's pace, paying retries); the import's pace is the lower of the two per API
(:meth:`QuotaCheck.rates`), and so is the ETA (``thingpress_cli.engines.plan``).

``--json`` carries the check as :meth:`QuotaCheck.as_dict`::

    {"quotas": [{"api", "budget", "quota", "quota_code", "source", "exceeded"}], "quotas_as_of"}

with ``source`` ``"account"`` (``GetServiceQuota``'s value) or ``"default"`` (the table's, with
the reason in ``"default_because"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from thingpress.iot_quotas import AS_OF, IOT_API_QUOTAS, SERVICE_CODE
from thingpress.settings import FunctionSettings
from thingpress.throttle import error_code

ACCOUNT, DEFAULT = "account", "default"
#: GetServiceQuota's answers that mean "no value for this quota here": the table's default stands in.
NO_VALUE = frozenset({"NoSuchResourceException", "AccessDeniedException"})


@dataclass(frozen=True, slots=True)
class ApiLimit:
    """One API: the deployed budget and the account's quota (requests per second)."""

    api: str
    budget: float
    quota: float
    source: str
    #: why the default stands in (the error code GetServiceQuota answered), None for an account value.
    default_because: str | None = None

    @property
    def exceeded(self) -> bool:
        return self.budget > self.quota

    @property
    def rate(self) -> float:
        """The pace the import gets: the lower of budget and quota."""
        return min(self.budget, self.quota)

    def warning(self) -> str:
        where = ("the account's quota" if self.source == ACCOUNT
                 else f"AWS's default quota (as of {AS_OF}; {self.default_because})")
        return (f"warning: the deployed IoT budget for {self.api} is {self.budget:g}/s, above {where} of "
                f"{self.quota:g}/s: calls beyond the quota are throttled; the ETA uses {self.quota:g}/s. Lower "
                f"THINGPRESS_IOT_TPS or ask for a quota increase (Service Quotas, {SERVICE_CODE} "
                f"{IOT_API_QUOTAS[self.api].code})")

    def as_dict(self) -> dict[str, Any]:
        found = {"api": self.api, "budget": self.budget, "quota": self.quota, "source": self.source,
                 "quota_code": IOT_API_QUOTAS[self.api].code, "exceeded": self.exceeded}
        return found | ({"default_because": self.default_because} if self.default_because else {})


@dataclass(frozen=True, slots=True)
class QuotaCheck:
    limits: tuple[ApiLimit, ...]

    def rates(self) -> dict[str, float]:
        """API -> the import's pace (the lower of budget and quota)."""
        return {limit.api: limit.rate for limit in self.limits}

    def warnings(self) -> list[str]:
        return [limit.warning() for limit in self.limits if limit.exceeded]

    def as_dict(self) -> dict[str, Any]:
        return {"quotas": [limit.as_dict() for limit in self.limits], "quotas_as_of": AS_OF}


def read_quota(client: Any, api: str) -> tuple[float, str, str | None]:
    """(value, source, why the default) of ``api``'s quota: the account's, else AWS's default."""
    quota = IOT_API_QUOTAS[api]
    try:
        answer = client.get_service_quota(ServiceCode=SERVICE_CODE, QuotaCode=quota.code)
    except ClientError as exc:
        code = error_code(exc)
        if code not in NO_VALUE:
            raise
        return float(quota.default), DEFAULT, code
    value = answer.get("Quota", {}).get("Value")
    if value is None:  # the quota is known but carries no value: as NoSuchResource
        return float(quota.default), DEFAULT, "no value"
    return float(value), ACCOUNT, None


def check_quotas(client: Any, budget: Mapping[str, float]) -> QuotaCheck:
    """Each importer API's budget (``budget``, default AWS's default) against the account's quota."""
    limits = []
    for api, quota in IOT_API_QUOTAS.items():
        value, source, because = read_quota(client, api)
        limits.append(ApiLimit(api, float(budget.get(api, quota.default)), value, source, because))
    return QuotaCheck(tuple(limits))


def deployment_quota_check(deployment: Any, settings: FunctionSettings) -> QuotaCheck:
    """The check for a deployment: its importer's budget against its account's quotas (its region)."""
    return check_quotas(deployment.client("service-quotas"), settings.iot_tps)

