"""``python -m gestalt._runtime ROOT TARGET [RUNTIME_KIND]``: how the host starts a provider.

The cycle collector is set for start-up first (:func:`~gestalt._runtime.collect_for_start_up`),
so that the runtime's and the provider's imports run at that pace.
"""

from gestalt._runtime import collect_for_start_up

collect_for_start_up()

from gestalt._runtime.process import main  # noqa: E402  (after the collector is set)

raise SystemExit(main())
