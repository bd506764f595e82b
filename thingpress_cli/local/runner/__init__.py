"""Lambda without Docker: run the deployed functions on their event sources, as Lambda does.

For every SQS event source mapping the emulator holds (``ListEventSourceMappings``),
the runner polls the mapping's queue and invokes the function the way Lambda's SQS
poller does; every ``rate(...)`` EventBridge schedule that targets a function runs it
once per period. One module per job:

* :mod:`.daemon`: ``python -m thingpress_cli.local.runner`` (``__main__``), started and stopped by
  ``thingpress local up|down`` (pid and start time recorded: :mod:`thingpress_cli.local.supervision`);
* :mod:`.supervisor`: :class:`.supervisor.Runner`, one poller per event source, re-read
  every :data:`.supervisor.REFRESH_SECONDS` (a redeploy starts that source's workers anew once the
  invocations in hand have ended, as an update on AWS lets them end);
* event sources: :mod:`.sqs_source` (SQS pollers: batches, partial batch responses,
  concurrency) and :mod:`.schedules` (EventBridge rate schedules);
* :mod:`.workers`: warm worker processes in a clean interpreter (Lambda's environment,
  the execution role's credentials, a /tmp of the function's size, timeouts, crashes);
* :mod:`.code`: the deployed zips, downloaded once per ``CodeSha256`` and unpacked in
  Lambda's layout;
* :mod:`.cloud`: the emulator as the runner reads it (functions, mappings, schedules);
* :mod:`.model`: the records they pass around.

The worker's own side is :mod:`thingpress_cli.local.bootstrap`.
"""
