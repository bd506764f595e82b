"""The ``thingpress`` commands, one module each (``thingpress --help`` groups them: :data:`thingpress_cli.main.GROUPS`).

Each module holds the command's argument definitions (``register(subparsers)``), its run
function and what it prints:

* before an import: ``generate`` (a test manifest), ``inspect`` (parse it locally), ``plan``
  (what an upload would do in the account);
* during an import: ``upload``, ``status``;
* after an import: ``report``, ``reconcile``, ``redrive``, ``rollback``, ``teardown``;
* on the local cloud: ``local`` (up, down, destroy, status, run, quotas), ``demo``.

Where a command's logic is more than the command, it is in :mod:`thingpress_cli.engines`
and the command module only wires it to the command line: the rollback engine is run by
``rollback``, by ``teardown`` and by ``local destroy`` (and driven directly by the tests);
the teardown engine by ``teardown`` and ``local destroy``; the reconciler and the plan's
probe and counting are what the tests exercise call by call, and reconcile shares the
plan's read budget. Keeping them out of the command modules means no command imports
another command for its logic. What several commands share (the deployment, the manifest
summaries and progress, hints, test certificates) is :mod:`thingpress_cli.core`.
"""
