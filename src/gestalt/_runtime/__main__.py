"""``python -m gestalt._runtime ROOT TARGET [RUNTIME_KIND]``: how the host starts a provider."""

from gestalt._runtime.process import main

raise SystemExit(main())
