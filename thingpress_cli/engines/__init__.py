"""What the bigger commands do, callable without the command line (the commands in :mod:`thingpress_cli.commands`).

* :mod:`.rollback`: undoes the imports of some manifests, by ownership (``thingpress rollback``, and the
  teardown engine);
* :mod:`.teardown`: undoes every import of an environment and empties its stack's IoT resources for
  ``cdktf destroy`` (``thingpress teardown``, ``thingpress local destroy``);
* :mod:`.reconcile`: the audit table against the registry, with repairs (``thingpress reconcile``);
* :mod:`.plan`: what an upload of a file would do in the account, and its time (``thingpress plan``).
"""
