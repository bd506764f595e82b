"""What every construct needs from its deployment: names, ARN building, tags."""

from __future__ import annotations

from dataclasses import dataclass

from stacks.config import StackConfig
from stacks.naming import Names


@dataclass(frozen=True)
class DeploymentContext:
    config: StackConfig
    #: tokens of the aws_partition / aws_caller_identity data sources.
    partition: str
    account_id: str

    @property
    def names(self) -> Names:
        return self.config.names

    @property
    def region(self) -> str:
        return self.config.region

    def arn(self, service: str, resource: str, *, regional: bool = True, account: bool = True) -> str:
        region = self.region if regional else ""
        acct = self.account_id if account else ""
        return f"arn:{self.partition}:{service}:{region}:{acct}:{resource}"
