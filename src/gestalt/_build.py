"""``python -m gestalt._build ROOT TARGET OUTPUT NAME KIND GOOS GOARCH``: the host's packaging step.

An entry point only; the build itself is :mod:`gestalt._devtools.build`.
"""

from gestalt._devtools.build import main

if __name__ == "__main__":
    raise SystemExit(main())
