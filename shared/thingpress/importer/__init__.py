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
things by the ``ATTR_*`` names, ``reconcile`` a row by ``THING_EXISTED``); it takes no
client and makes no call, so it is read and tested without one. ``calls`` changes with the IoT API: the
order of the calls, what their answers and errors mean, and the API names the token
buckets, ``thingpress plan`` and ``reconcile`` are keyed by. ``results`` changes with
what a delivery reports: the types the Lambda handler and the tests hold, and the
rule that maps what happened to a status. ``runtime`` changes with the
audit table and SQS: when an outcome is read, written, queued or replaced. The IoT
calls are a mixin, as ``thingpress.provider``'s chain and pauses are, because they
use the importer's client, settings, throttle and ARNs and are tested through it
(``Importer._import``); a separate object would only pass those four along.

Each module imports only the ones listed after it in the table above (``runtime``:
all three; ``calls``: ``results`` and ``rules``; ``rules``: ``results``), so there is
no cycle.

Re-exported here: what the importer function's handler imports (``Importer``,
``CertificateArns``, ``Outcome``, ``Pending``, ``RetryLater``), as ``thingpress.provider``
and ``thingpress.audit`` do for theirs; everything else is imported from the module
that defines it.
"""

from __future__ import annotations

from thingpress.importer.results import Outcome, Pending, RetryLater
from thingpress.importer.rules import CertificateArns
from thingpress.importer.runtime import Importer

__all__ = ["CertificateArns", "Importer", "Outcome", "Pending", "RetryLater"]
