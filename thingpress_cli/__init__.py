"""The operator side of thingpress: the ``thingpress`` command and what it runs on.

* :mod:`thingpress_cli.main`: the entry point (``thingpress``): builds the parser, lists the commands grouped;
* :mod:`thingpress_cli.commands`: one module per ``thingpress`` command (its arguments and run);
* :mod:`thingpress_cli.engines`: what rollback, teardown, reconcile and plan do, callable without the command line;
* :mod:`thingpress_cli.core`: what the commands share: the deployment, output, the toolchain, test certificates;
* :mod:`thingpress_cli.harness`: the test harnesses ``make`` runs with ``python -m`` (``chaos``, ``preview_job``);
* :mod:`thingpress_cli.local`: the local cloud (emulator, AWS behaviour on moto, Lambda runner);
* :mod:`thingpress_cli.iamcheck`: the IAM check of the synthesized stack (``make iam-check``).
"""
