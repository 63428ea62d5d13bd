"""The developer tools: the ``gestalt`` command, its dev host and release builds.

May import everything else in ``gestalt``. Nothing imports the dev tools except the entry
points ``gestalt/__main__.py`` and ``gestalt/_build.py``.
"""
