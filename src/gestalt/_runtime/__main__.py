"""``python -m gestalt._runtime ROOT TARGET [RUNTIME_KIND]``: how the host starts a provider.

Start-up (the SDK's and the provider's imports, registration) allocates much and frees
little, so the cycle collector only costs time there (about a tenth of the CPU until the
first call): it is off until the server is up, when :func:`~gestalt._runtime.process.serve`
turns it back on.
"""

import gc

gc.disable()

from gestalt._runtime.process import main  # noqa: E402  (after gc.disable on purpose)

raise SystemExit(main())
