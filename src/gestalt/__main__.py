"""``python -m gestalt``: the ``gestalt`` command line (see :mod:`gestalt._cli`)."""

from gestalt._cli import main

raise SystemExit(main())
