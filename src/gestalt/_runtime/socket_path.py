"""Checks on a unix socket path before binding it, shared by the runtime and ``gestalt.local``.

grpc's own errors for these cases are vague ("Failed to bind to address") and come after a
line its C core logs by itself; checking first gives one message naming the path and the
reason. Nothing here touches the filesystem beyond looking at the socket's directory.
"""

from __future__ import annotations

import os
import sys
from typing import Final

#: Longest unix socket path, in bytes, that ``sockaddr_un`` holds: 107 on Linux (108 with the
#: terminating NUL), 103 on macOS and the BSDs.
MAX_SOCKET_PATH_BYTES: Final = 107 if sys.platform.startswith("linux") else 103


class ListenError(OSError, RuntimeError):
    """A server could not listen on its address (also a ``RuntimeError``, as grpc raises)."""


class SocketDirectoryNotFoundError(FileNotFoundError, ListenError):
    """The directory that should hold the unix socket does not exist."""


def check_socket_path_length(path: str | os.PathLike[str]) -> None:
    """Raise ``ValueError`` when ``path`` is too long to bind (measured as it will be bound)."""
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH_BYTES:
        raise ValueError(
            f"unix socket path {os.fspath(path)} is {size} bytes, longer than the "
            f"{MAX_SOCKET_PATH_BYTES} a unix socket address holds; use a shorter path"
        )


def check_socket_directory(path: str | os.PathLike[str]) -> None:
    """Raise :class:`SocketDirectoryNotFoundError` unless ``path``'s directory exists."""
    parent = os.path.dirname(os.fspath(path)) or "."
    if os.path.isdir(parent):
        return
    reason = "is not a directory" if os.path.exists(parent) else "does not exist"
    raise SocketDirectoryNotFoundError(
        f"cannot create the unix socket {os.fspath(path)}: its directory {parent} {reason}"
    )
