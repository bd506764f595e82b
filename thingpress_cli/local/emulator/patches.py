"""The one patch set: what makes moto 5.2 answer as AWS does, applied the same way everywhere.

:func:`apply` is the only way the patches are applied: the emulator's server
(:func:`.wsgi.install`) and the unit tests' in-process ``mock_aws`` fixtures
(``tests/aws_fixtures.py``) both call it, so both see the same AWS rules. It first
runs :func:`.guard.check` over :data:`PATCHED` (moto must be the pinned version,
every patched attribute must exist with the parameters its patch expects), then
each service module's ``install``, once per process:

* :mod:`.iot`: AWS-true certificate ids, ``CreateThing`` on an existing thing;
  :mod:`.iot_rules` (registry limits), :mod:`.iot_detach` (detach propagation, off
  unless set), :mod:`.iot_deletion` (deletions refused as AWS refuses them);
* :mod:`.dynamodb`: requests one at a time, with :mod:`.conflicts` and
  :mod:`.index_lag` (both off unless set) under the same lock;
* :mod:`.sqs`: queues changed under their lock, no built-in Lambda delivery;
  :mod:`.sqs_rules` (``SetQueueAttributes``), :mod:`.sqs_move` (message move tasks);
* :mod:`.s3`: bucket policies evaluated as over TLS, versioned event records;
  :mod:`.s3_rules` (a missing object is 403 to who may not list);
* :mod:`.service_paths`: EventBridge, S3 and CloudWatch deliveries only where the
  target's policies allow them;
* :mod:`.servicequotas`: ``GetServiceQuota`` answers IoT Core's rate quotas from the quota mode;
* :mod:`.awslambda`: no Docker;
* :mod:`.speed`: the same answers at less cost; :mod:`.query_range` (a ``Query`` reads its key
  range, not the whole table); :mod:`.item_serializer` (DynamoDB items written as they are).
"""

from __future__ import annotations

from thingpress_cli.local.emulator import (
    awslambda, dynamodb, guard, iot, iot_deletion, iot_detach, iot_rules, item_serializer, query_range, s3, s3_rules,
    service_paths, servicequotas, speed, sqs, sqs_move, sqs_rules)
from thingpress_cli.local.emulator.guard import Patched
from thingpress_cli.local.emulator.iot_deletion import DeletionRules

#: The modules that patch moto, each listing what it patches in its ``PATCHED``.
PATCHING = (iot, iot_rules, iot_detach, iot_deletion, dynamodb, sqs, sqs_rules, sqs_move, s3, s3_rules, service_paths,
            servicequotas, awslambda, speed, query_range, item_serializer)


def _by_attribute() -> dict[Patched, tuple[str, ...]]:
    found: dict[Patched, tuple[str, ...]] = {}
    for module in PATCHING:
        for patched in module.PATCHED:
            found[patched] = (*found.get(patched, ()), module.__name__)
    return found


#: Every moto attribute the patches replace, wrap or rely on (with the parameters each patch expects),
#: and the modules that patch it: :func:`.guard.check` names them when moto changed under them.
PATCHED = _by_attribute()

_applied: list[DeletionRules] = []


def apply(rules: DeletionRules | None = None) -> DeletionRules:
    """Check moto, then patch it (once per process); returns the IoT deletion rules in force.

    ``rules``: the deletion rules' settings (the emulator's, changeable at
    ``/moto-api/thingpress/settings``); default AWS's. A later call changes nothing.
    """
    if _applied:
        return _applied[0]
    guard.check(PATCHED)
    rules = rules or DeletionRules()
    iot.install()
    dynamodb.install()
    sqs.install()
    s3.install()
    service_paths.install()
    s3_rules.install()
    iot_rules.install()
    iot_detach.install()
    sqs_rules.install()
    speed.install()
    query_range.install()
    item_serializer.install()
    awslambda.install()
    iot_deletion.install(rules)
    sqs_move.install()
    servicequotas.install()
    _applied.append(rules)
    return rules
