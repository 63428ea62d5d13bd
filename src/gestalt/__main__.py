"""``python -m gestalt``: the ``gestalt`` command line (see :mod:`gestalt._devtools.cli`)."""

from gestalt._devtools.cli import main

raise SystemExit(main())
