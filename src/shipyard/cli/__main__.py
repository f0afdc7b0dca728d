"""``python -m shipyard.cli``: the ``shipyard`` command."""

from shipyard.cli import main

raise SystemExit(main())
