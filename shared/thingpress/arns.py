"""Amazon Resource Names: one parse of ``arn:partition:service:region:account:resource``.

The resource part is read as AWS writes it for the services thingpress uses:
``function:NAME[:QUALIFIER]`` and ``layer:NAME:VERSION`` (Lambda), ``cert/ID``
(IoT), ``rule/NAME`` (EventBridge), a bare ``NAME`` (SQS). The layer (the
functions) and the CLI both parse ARNs here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TYPE = re.compile(r"^([^:/]+)[:/](.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Arn:
    """The six parts of an ARN, and the resource's type, name and qualifier."""

    partition: str
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, text: str) -> Arn:
        """The parts of ``text``; ``ValueError`` unless it has six colon-separated parts starting with ``arn``."""
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn":
            raise ValueError(f"not an ARN: {text!r}")
        return cls(*parts[1:])

    @property
    def resource_type(self) -> str:
        """``function``, ``layer``, ``cert``, ``rule``...; ``""`` for a bare name (an SQS queue)."""
        found = _TYPE.match(self.resource)
        return found.group(1) if found else ""

    @property
    def resource_name(self) -> str:
        """The name after the type, up to a qualifier (``function:NAME:alias`` -> ``NAME``); a bare name whole."""
        found = _TYPE.match(self.resource)
        return (found.group(2) if found else self.resource).split(":", 1)[0]

    @property
    def qualifier(self) -> str | None:
        """What follows the name after a colon: a function's version or alias, a layer's version number."""
        found = _TYPE.match(self.resource)
        rest = (found.group(2) if found else self.resource).split(":", 1)
        return rest[1] if len(rest) == 2 else None
