from thingpress_cli.iamcheck.check import main

raise SystemExit(main())
