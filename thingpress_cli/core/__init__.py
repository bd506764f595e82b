"""What the ``thingpress`` commands share.

* :mod:`.errors`: the exit statuses, the errors that end a command, and the one handler ``main`` calls;
* :mod:`.deployment`: a deployment through its outputs (names, clients, uploads);
* :mod:`.summaries`: manifest summaries as the operator sees them, and waiting for a manifest to finish;
* :mod:`.progress`: the progress meters and display of manifests being imported;
* :mod:`.hints`: the commands named in hints, as the operator can type them here;
* :mod:`.samples`: where the real vendor samples are;
* :mod:`.certificates`: test certificates and manifests in the generated format;
* :mod:`.toolchain`: the environment of every terraform / cdktf call (``python -m thingpress_cli.core.toolchain``).

IoT calls are throttled by ``thingpress.throttle`` (shared with the Lambda functions); each engine sizes its own budget.
"""
