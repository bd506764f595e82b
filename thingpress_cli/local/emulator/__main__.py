"""``python -m thingpress_cli.local.emulator``: the emulator's server process (:func:`.server.main`)."""

from thingpress_cli.local.emulator.server import main

raise SystemExit(main())
