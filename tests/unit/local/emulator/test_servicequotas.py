"""GetServiceQuota answers IoT Core's rate quotas from the quota mode (thingpress_cli/local/emulator/servicequotas.py)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from thingpress.iot_quotas import IOT_API_QUOTAS, SERVICE_CODE
from thingpress_cli.local.emulator import process as emulator

REGISTER = IOT_API_QUOTAS["RegisterCertificateWithoutCA"].code
ATTACH_POLICY = IOT_API_QUOTAS["AttachPolicy"].code
CREATE_THING = IOT_API_QUOTAS["CreateThing"].code


def _value(client, code: str, service: str = SERVICE_CODE) -> float:
    return client.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"]


def _no_value(client, code: str, service: str = SERVICE_CODE) -> None:
    with pytest.raises(ClientError) as caught:
        client.get_service_quota(ServiceCode=service, QuotaCode=code)
    assert caught.value.response["Error"]["Code"] == "NoSuchResourceException"


def test_the_quota_mode_s_rates_are_the_account_s_quotas(aws, emulator_url):
    quotas = aws("service-quotas")
    try:
        emulator.set_quotas(emulator_url, "default")
        assert (_value(quotas, REGISTER), _value(quotas, ATTACH_POLICY), _value(quotas, CREATE_THING)) == (10, 15, 100)
        quota = quotas.get_service_quota(ServiceCode=SERVICE_CODE, QuotaCode=REGISTER)["Quota"]
        assert quota["QuotaName"] == "RegisterCertificateWithoutCA API TPS"
        assert quota["QuotaArn"].endswith(f":{SERVICE_CODE}/{REGISTER}")
        assert quota["Period"] == {"PeriodValue": 1, "PeriodUnit": "SECOND"}
        # changed at run time: an API's own rate, else "*"
        emulator.set_quotas(emulator_url, {"RegisterCertificateWithoutCA": 3, "*": 40})
        assert (_value(quotas, REGISTER), _value(quotas, ATTACH_POLICY)) == (3, 40)
        # what the emulator does not meter is moto's: no value
        _no_value(quotas, "L-00000000")
        _no_value(quotas, REGISTER, service="iot")
    finally:
        emulator.set_quotas(emulator_url, "off")


def test_with_the_quota_mode_off_there_is_no_value(aws):
    quotas = aws("service-quotas")
    for quota in IOT_API_QUOTAS.values():
        _no_value(quotas, quota.code)
