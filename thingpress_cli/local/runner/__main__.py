"""``python -m thingpress_cli.local.runner``: the runner daemon (:func:`.daemon.main`)."""

from thingpress_cli.local.runner.daemon import main

raise SystemExit(main())
