"""Synth-time guards on Lambda environments.

* Reserved keys (the Lambda runtime sets them; setting one fails at deploy time,
  or silently changes behaviour) are refused, naming the function and the key.
* Only the names in ``thingpress.settings.ALL`` and the Powertools settings below
  may be set: a typo'd variable would be ignored by the function.
* A variable that names a resource (table, queue, thing type/group, policy, S3
  prefix) must be a token that references a resource of the same stack: no name
  typed by hand. The only exception is a value the caller declares as coming from
  configuration (an existing IoT policy, thing type or group named by the user).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from cdktf import DefaultTokenResolver, StringConcat, TerraformStack, Token, Tokenization
from constructs import IConstruct
from thingpress import settings

RESERVED_KEYS = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
    "TZ", "LANG", "PATH", "LD_LIBRARY_PATH", "PYTHONPATH",
})
RESERVED_PREFIXES = ("AWS_LAMBDA_",)
POWERTOOLS_KEYS = frozenset({"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"})
ALLOWED_KEYS = frozenset(settings.ALL) | POWERTOOLS_KEYS
#: variables whose value names an AWS resource.
RESOURCE_KEYS = frozenset({
    settings.AUDIT_TABLE, settings.IMPORT_QUEUE_URL, settings.MANIFEST_QUEUE_URL, settings.THING_TYPE,
    settings.THING_GROUP, settings.POLICY_NAMES, settings.MICROCHIP_SIGNERS, settings.IMPORT_DLQ_URL,
    settings.MANIFEST_QUEUE_URLS,
})

_REFERENCE = re.compile(r"\$\{(data\.)?([a-z0-9_]+)\.([A-Za-z0-9_\-]+)[.\[}]")


class GuardError(ValueError):
    """A Lambda environment breaks a guard; one line per problem, naming function and key."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


@functools.cache
def _element_type(cls: type) -> str | None:
    """The Terraform type of a generated resource / data source class (one jsii call per class)."""
    return getattr(cls, "TF_RESOURCE_TYPE", None)


def _in_stack(stack: TerraformStack, address: str) -> bool:
    """Whether ``[data.]type.logical_id`` is an element of ``stack``."""
    from cdktf import TerraformDataSource, TerraformResource

    data = address.startswith("data.")
    rtype, _, logical = address.removeprefix("data.").partition(".")
    kind = TerraformDataSource if data else TerraformResource
    return any(isinstance(node, kind) and _element_type(type(node)) == rtype and node.friendly_unique_id == logical
               for node in stack.node.find_all())


def check_environment(scope: IConstruct, function: str, variables: Mapping[str, str],
                      configured: Mapping[str, str] | None = None) -> list[str]:
    """Every guard violation of ``variables`` for ``function`` (empty when clean).

    ``configured``: key -> literal value the user configured (an existing resource's name).
    """
    configured = configured or {}
    errors: list[str] = []
    stack = TerraformStack.of(scope)
    for key, value in variables.items():
        if key in RESERVED_KEYS or key.startswith(RESERVED_PREFIXES):
            errors.append(f"function {function}: environment variable {key} is reserved by AWS Lambda")
            continue
        if key not in ALLOWED_KEYS:
            errors.append(f"function {function}: environment variable {key} is not a thingpress setting "
                          "(see thingpress.settings)")
            continue
        if key not in RESOURCE_KEYS:
            continue
        if key in configured and value == configured[key]:
            continue
        if not Token.is_unresolved(value):
            errors.append(f"function {function}: environment variable {key}={value!r} names a resource by hand; "
                          "it must reference a resource of the stack")
            continue
        try:
            # preparing=True: a reference to another stack's resource then resolves to a
            # cross-stack (remote state) reference, which no address of this stack matches.
            resolved = str(Tokenization.resolve(value, scope=stack, preparing=True,
                                                resolver=DefaultTokenResolver(StringConcat())))
        except Exception as exc:  # a token from another app or stack does not resolve here
            errors.append(f"function {function}: environment variable {key} does not resolve in stack "
                          f"{stack.node.id} ({exc.__class__.__name__})")
            continue
        refs = [("data." if m.group(1) else "") + f"{m.group(2)}.{m.group(3)}" for m in _REFERENCE.finditer(resolved)]
        foreign = [r for r in refs if not _in_stack(stack, r)]
        if not refs or foreign:
            errors.append(f"function {function}: environment variable {key} must reference a resource of stack "
                          f"{stack.node.id}; it resolves to {resolved!r}")
    return errors
