"""What the bigger commands do, callable without the command line (the commands in :mod:`thingpress_cli.commands`).

* :mod:`.rollback`: undoes the imports of some manifests, by ownership (``thingpress rollback``, and the
  teardown engine); its IoT calls, their retries and what stops a run (``Stopped``) are
  :mod:`.rollback_calls`, its report and how it is printed :mod:`.rollback_report`;
* :mod:`.teardown`: undoes every import of an environment and empties its stack's IoT resources for
  ``cdktf destroy`` (``thingpress teardown``, ``thingpress local destroy``);
* :mod:`.reconcile`: the audit table against the registry, with repairs (``thingpress reconcile``);
* :mod:`.plan`: what an upload of a file would do in the account, and its time (``thingpress plan``).
"""
