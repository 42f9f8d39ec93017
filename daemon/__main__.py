"""`python -m daemon` is `putt-daemon`."""

from daemon.cli import main

raise SystemExit(main())
