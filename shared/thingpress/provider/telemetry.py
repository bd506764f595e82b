"""The provider's log and metrics: one Powertools ``Logger`` and one ``Metrics`` for every module
of ``thingpress.provider`` (one metrics object, so what the modules add is flushed, or cleared, once)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="thingpress-provider")
metrics = Metrics(namespace="thingpress", service="thingpress-provider")
