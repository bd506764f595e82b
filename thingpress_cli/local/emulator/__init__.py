"""The local AWS emulator: moto server with thingpress's patches, so it refuses what AWS refuses.

One module per job, as moto lays out its own code:

* the process: :mod:`.process` (start, find, stop the server; change its settings at
  runtime), :mod:`.server` (``python -m thingpress_cli.local.emulator``: serve
  moto behind the WSGI layer), :mod:`.wsgi` (the layer: IoT tags, Lambda code, quota
  mode, faults, control endpoints), :mod:`.wsgi_io` (its request/response helpers),
  :mod:`.request_log` (every request with its time);
* the one patch set: :mod:`.patches` (:func:`.patches.apply`, used by the server and
  by the in-process unit fixtures), checked first by :mod:`.guard` (the pinned moto,
  every patched internal with its signature; ``make install`` runs it);
* one module per AWS service a patch changes: :mod:`.iot` (certificate ids,
  ``CreateThing``), :mod:`.iot_rules` (registry limits), :mod:`.iot_detach` (detach
  propagation), :mod:`.iot_deletion` (deletions), :mod:`.iot_tags` (tag APIs),
  :mod:`.quota` (IoT rate quotas); :mod:`.dynamodb` (one request at a time),
  :mod:`.conflicts` (transaction conflicts), :mod:`.index_lag` (GSI lag); :mod:`.sqs`
  (queue locks, no built-in Lambda delivery), :mod:`.sqs_rules`
  (``SetQueueAttributes``), :mod:`.sqs_move` (message move tasks); :mod:`.s3` (bucket
  policies over TLS, versioned event records), :mod:`.s3_rules` (403 for a missing
  object); :mod:`.service_paths` (EventBridge, S3 and CloudWatch deliveries as the
  policies allow); :mod:`.awslambda` (no Docker, downloadable code); :mod:`.speed`
  (same answers, less cost), :mod:`.query_range` (a ``Query`` reads its key range),
  :mod:`.item_serializer` (DynamoDB items written as they are);
* shared by them: :mod:`.iam_conditions` (IAM policy evaluation), :mod:`.faults`
  (fault injection).
"""
