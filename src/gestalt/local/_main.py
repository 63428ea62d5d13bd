"""The ``python -m gestalt.local.<service>`` entry points: serve until SIGINT or SIGTERM.

Each prints the service's target on stdout once it listens. A problem starting it (a
socket path too long for ``AF_UNIX``, a missing directory, a socket already served, data
used by another service) is one line on stderr naming the address and the reason, and
exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any


def run(
    prog: str,
    description: str,
    start: Callable[[argparse.Namespace], Any],
    argv: Sequence[str] | None = None,
    *,
    options: Callable[[argparse.ArgumentParser], None] = lambda parser: None,
) -> int:
    """Parse ``argv`` (address, ``--relay-token`` and ``options``), ``start(args)`` a server
    handle (a context manager with ``target``) and serve until a signal; the exit status."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("address", help="unix socket path, unix://PATH or tcp://HOST:PORT")
    parser.add_argument("--relay-token", default=None, help="require this relay token")
    options(parser)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        server = start(args)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"{prog}: cannot serve on {args.address}: {exc}", file=sys.stderr)
        return 2
    with server:
        print(server.target, flush=True)
        stop.wait()
    return 0
