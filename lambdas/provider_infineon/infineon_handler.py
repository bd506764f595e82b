"""The infineon provider function: infineon manifests from S3 -> import messages (see thingpress.provider)."""

from typing import Any

from thingpress.provider import Provider

#: module level: one per cold start (clients and settings are created on first use).
provider = Provider("infineon")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return provider.handle(event, context)
