"""`python -m sonotype` runs the command-line interface."""

from sonotype.cli.main import main

raise SystemExit(main())
