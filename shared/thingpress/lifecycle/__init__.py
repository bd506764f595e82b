"""After the import: certificates activated, deactivated or revoked in bulk, as the pipeline runs.

Two-phase provisioning registers certificates INACTIVE (``THINGPRESS_CERTIFICATE_STATUS``) and
activates them once the factory confirms a device passed test, with the factory's facts as thing
attributes (``thingpress activate``); devices that failed test, were scrapped or returned get their
certificates INACTIVE or REVOKED (``thingpress deactivate``).

A list of any length runs as the import does, not from the operator's laptop one call at a
time: the command resolves nothing itself; it creates the job's summary in the audit table
and sends one message per batch of entries (``BATCH_ENTRIES``) to the lifecycle queue; the
lifecycle function (``lambdas/lifecycle``) resolves each entry through the audit table, sets the
certificate statuses through the importer's throttle, and records one row per certificate
(ACTIVATED, DEACTIVATED, REVOKED; REFUSED, UNKNOWN or FAILED with the reason), with who asked,
when, why and what changed; the command watches the summary's counts. When the last batch is in,
the function writes the job's results files (``results/lifecycle/<job id>/results.jsonl`` and
``errors.jsonl``, as a manifest's) and completes the job.

Idempotent and resumable: the job id is a digest of the request (submitting it again resumes
it, or finds it done); a batch is recorded once (its marker); a certificate already at the
status asked is not changed again. A failed batch is delivered again by SQS, then lands in the
lifecycle DLQ (alarmed).

Modules
-------
===========  ===========================================================================
``jobs``     the vocabulary, the job id, entries, the batch message (no AWS)
``store``    ``JobTable``: the job's summary, batch markers and rows in the audit table
``resolve``  ``Resolver``: the certificates an entry names, through the audit table
``worker``   ``LifecycleWorker``: a batch done once, the job's results files and completion
===========  ===========================================================================
"""
