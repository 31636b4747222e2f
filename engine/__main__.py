"""`python -m engine` is the `xfer` command."""

from engine.cli import main

raise SystemExit(main())
