"""Private files and folders for the embedded services' data, and the lock that guards them.

Everything the services write is for the current user only: folders they create get mode
0700 and files 0600, set explicitly so that the process umask does not matter. A store
takes an exclusive ``flock`` on a lock file for as long as it is open, so a second service
pointed at the same data is refused at start instead of half-working beside the first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no cross-process guard
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "StoreInUseError",
    "lock_exclusive",
    "private_dir",
    "private_file",
]

#: Mode of every folder the services create.
DIR_MODE = 0o700
#: Mode of every file the services create.
FILE_MODE = 0o600


class StoreInUseError(RuntimeError):
    """Another open store (in this process or another one) already uses this data."""


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents with mode 0700; existing folders are kept."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(DIR_MODE)
        except FileExistsError:
            continue  # created meanwhile by someone else: not ours to change
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 unless it exists (a symlink there is refused)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        return path
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def lock_exclusive(path: Path, what: str) -> BinaryIO:
    """Hold an exclusive lock on ``path`` (created 0600) until the returned file is closed.

    Raises :class:`StoreInUseError` naming ``what`` when someone else holds it.
    """
    private_file(path)
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    handle = os.fdopen(fd, "r+b")
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise StoreInUseError(f"{what} is already used by another running service") from exc
    return handle
