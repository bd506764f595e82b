"""Import one certificate: an import message in, a registered certificate and its thing out.

Pure logic over an injected IoT client and ``AuditTable``; the Lambda handler
(``lambdas/importer/import_handler.py``) only wires it to SQS, logs and metrics. One
delivery of one message: decoded and checked, five IoT calls for a new certificate
with one policy and one group, one outcome recorded exactly once (``IMPORTED``,
``ALREADY_PRESENT``, ``REJECTED`` or ``FAILED``), what this manifest created noted
on the row for rollback.

Modules
-------
===========  ==========================================================================================
``runtime``  ``Importer`` (``handle``, ``record_pending``, ``complete``): a delivery's outcome recorded
             exactly once, redeliveries and DLQ redrives, poison messages; "Idempotency"
``calls``    the IoT calls in order (``IotCalls``, mixed into ``Importer``), the IoT API names, what
             their errors mean (``retryable``, ``client_error_text``); "IoT calls, in order"
``results``  ``Outcome``, ``Pending``, ``Rejected``, ``RetryLater``, ``Owned``; "Outcome rule",
             "Ownership"
``rules``    what needs no AWS: ``thing_attributes`` and the ``ATTR_*`` names, ``check_certificate``,
             ``CertificateArns``, the reasons ``THING_EXISTED`` and ``INTERNAL_ERROR``
===========  ==========================================================================================

Why these four
--------------
They are cut where the reasons to change differ, and each module's docstring holds the
part of the "why" it describes. ``rules`` changes with IoT's limits and the
message format and is what the CLI reads back (``rollback`` and ``teardown`` recognise
things by the ``ATTR_*`` names, ``reconcile`` a row by ``THING_EXISTED``); it imports
no client, so it can be read and tested alone. ``calls`` changes with the IoT API: the
order of the calls, what their answers and errors mean, and the API names the token
buckets, ``thingpress plan`` and ``reconcile`` are keyed by. ``results`` changes with
what a delivery reports: the types the handler, the CLI's local cloud and the tests
hold, and the rule that maps what happened to a status. ``runtime`` changes with the
audit table and SQS: when an outcome is read, written, queued or replaced. The IoT
calls are a mixin, as ``thingpress.provider``'s chain and pauses are, because they
use the importer's client, settings, throttle and ARNs and are tested through it
(``Importer._import``); a separate object would only pass those four along.

Dependencies go one way: ``results`` <- ``rules`` <- ``calls`` <- ``runtime``.

Re-exported here, for now: every name ``thingpress.importer`` had as one module.
"""

from __future__ import annotations

from thingpress.importer.calls import ADD_TO_GROUP, ATTACH_POLICY, ATTACH_PRINCIPAL, CREATE_THING, REGISTER
from thingpress.importer.results import Outcome, Pending, Rejected, RetryLater
from thingpress.importer.rules import (
    ATTR_ENV, ATTR_MANIFEST, ATTR_QUEUED, ATTR_VENDOR, THING_EXISTED, CertificateArns, check_certificate,
    thing_attributes,
)
from thingpress.importer.runtime import Importer

__all__ = [
    "ADD_TO_GROUP", "ATTACH_POLICY", "ATTACH_PRINCIPAL", "ATTR_ENV", "ATTR_MANIFEST", "ATTR_QUEUED", "ATTR_VENDOR",
    "CREATE_THING", "REGISTER", "THING_EXISTED", "CertificateArns", "Importer", "Outcome", "Pending", "Rejected",
    "RetryLater", "check_certificate", "thing_attributes",
]
