"""Results files: a completed manifest's outcomes as two files in the manifests bucket.

Auditors and factory systems read files, not DynamoDB. Once a manifest is COMPLETE
the results writer (``lambdas/results``, :class:`thingpress.results.writer.ResultsWriter`)
writes

* ``results/<manifest id>/results.jsonl``: one JSON line per audit row of the manifest,
  i.e. per entry except the duplicates (a later copy of a certificate already in the
  manifest is imported once, counted in the summary's ``duplicates`` and has no row of
  its own): the fields of :data:`thingpress.results.keys.FIELDS`, null where the row has none;
* ``results/<manifest id>/errors.jsonl``: the same lines for the entries that were not
  imported (refused by the provider or the importer, or failed), with their reasons; an
  empty file when there are none, so both files always exist.

The lines are in the audit table's key order (certificate rows by fingerprint, then the
provider's refusals by position), not in file order: every line names its ``position``.
Both objects are encrypted by the bucket's default encryption (SSE-KMS with the deployment
key) and expire after the audit retention (the stack's lifecycle rule on ``results/``), as
the audit rows do. No provider reads them: the bucket notifies the providers of
``incoming/<vendor>/`` only.

Who writes them, and when
-------------------------
Not the caller that completes the manifest (``AuditTable.try_complete``: the importer, a
provider or the watchdog). The importer runs 60 s with a batch to finish, and a million
lines take minutes to read and write; a provider or the watchdog completes a manifest only
now and then, and would need the bucket grant for it. Completion already puts one
``Manifest Completed`` event on the deployment's bus (:mod:`thingpress.events`): a second
rule on that bus feeds the results queue, and the results writer function (timeout 900 s,
one message at a time) writes the files from the event. So writing results costs the
completing caller nothing and needs no grant of it; a failed write is retried by SQS (and
lands in the results DLQ, with its alarm, when it keeps failing); and the keys, a function
of the manifest id alone (:func:`thingpress.results.keys.results_keys`), are in the event
(``detail.results``) before the files exist. Consumers wait for the objects (or for
``results`` on the summary): they are written shortly after the event.

If the event is lost (``completion_event`` PENDING or FAILED on the summary; see
:mod:`thingpress.events`) no file is written; ``thingpress report`` still reads the table.

Modules
-------
==========  ==========================================================================
``keys``    where the files are (``results_keys``) and what a line holds (``FIELDS``,
            ``result_line``); no AWS and no audit import, so ``thingpress.events`` and
            the stack can use it
``writer``  ``ResultsWriter``: the files of one manifest, streamed, written once
            (``StreamedObject``), noted on the summary
==========  ==========================================================================
"""
