"""``python -m gestalt._runtime ROOT TARGET [RUNTIME_KIND]``: how the host starts a provider.

Start-up (the SDK's and the provider's imports, registration) allocates much and frees
little, so the cycle collector's default pace (a young collection every 700 new objects,
older ones every tenth of those) only costs time there. Until
:func:`~gestalt._runtime.process.serve` freezes what start-up made and sets the serving
thresholds (:data:`~gestalt._runtime.SERVING_GC`), the thresholds are
:data:`~gestalt._runtime.START_UP_GC`: one young collection in about 20,000 objects, about
3 ms in all for a 50-operation plugin, against about 10 ms at the default pace. Turning the
collector off altogether would save those 3 ms but freeze the imports' garbage (classes the
standard library replaces as it loads) for good: 0.3 MiB of the provider's memory.
"""

import gc

from gestalt._runtime import START_UP_GC

gc.set_threshold(*START_UP_GC)

from gestalt._runtime.process import main  # noqa: E402  (after set_threshold on purpose)

raise SystemExit(main())
