"""AWS IoT Core's request-rate quotas for the APIs the importer calls: their Service Quotas codes and AWS's defaults.

The one table of them (:data:`IOT_API_QUOTAS`), dated :data:`AS_OF`:

* the default values (requests per second, per account and Region) are those of "AWS IoT Core
  endpoints and quotas" (AWS General Reference, :data:`SOURCE`), the API throttling table;
* the quota codes are those Service Quotas lists for IoT Core, service code ``iotcore``
  (``ListServiceQuotas``; "<API> API TPS" in its quota names). IoT Core's registry APIs are under
  ``iotcore``, not ``iot`` (which holds Device Defender, jobs and fleet metrics quotas).

The deployment's default budget (``settings.DEFAULT_IOT_TPS``) is these defaults; the CLI
(``thingpress_cli.core.quotas``) reads each quota's applied value with ``GetServiceQuota`` and
falls back to the default here when Service Quotas has no value for it; the local emulator
answers ``GetServiceQuota`` for these codes (``thingpress_cli.local.emulator.servicequotas``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The Service Quotas service code of AWS IoT Core's control-plane APIs.
SERVICE_CODE = "iotcore"
#: When the table below was last checked against :data:`SOURCE` and the Service Quotas listing.
AS_OF = "2026-12-06"
SOURCE = "https://docs.aws.amazon.com/general/latest/gr/iot-core.html#limits_iot"


@dataclass(frozen=True, slots=True)
class ApiQuota:
    """One API's request-rate quota: its Service Quotas code and AWS's default (requests per second)."""

    code: str
    default: float

    @property
    def name(self) -> str:
        """The quota's name as Service Quotas gives it."""
        return f"{_API_BY_CODE[self.code]} API TPS"


#: API -> quota, for every IoT API the importer calls (``thingpress.importer.calls``), as of :data:`AS_OF`.
IOT_API_QUOTAS: dict[str, ApiQuota] = {
    "RegisterCertificateWithoutCA": ApiQuota("L-4671C7C8", 10),
    "CreateThing": ApiQuota("L-64CBACAC", 100),
    "AttachThingPrincipal": ApiQuota("L-F64D1AA6", 100),
    "AttachPolicy": ApiQuota("L-CA7D4E3E", 15),
    "AddThingToThingGroup": ApiQuota("L-2904683A", 100),
}

_API_BY_CODE = {quota.code: api for api, quota in IOT_API_QUOTAS.items()}


def api_of(quota_code: str) -> str | None:
    """The IoT API a quota code of :data:`SERVICE_CODE` meters (None: not one of :data:`IOT_API_QUOTAS`)."""
    return _API_BY_CODE.get(quota_code)
