"""Files the bridge writes that hold personal data: owner-only, written atomically.

Reports, proposed-suspension lists, plan files and exports name people by NIP, so every one of
them is created mode 0600 (whatever the umask) and replaces its old version in one rename: a
reader never sees half a file, and a crash never leaves one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from moodle_bridge.errors import ConfigError

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "StateBusy",
    "exclusive",
    "private_dir",
    "write_private",
    "write_private_text",
]

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700 when it does not exist.

    An existing directory is used as it is: its mode is the owner's choice (``--out .``
    must not lock a shared folder); the files written into it are 0600 whatever it allows.
    """
    if not path.is_dir():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        # mkdir's mode is filtered by the umask; say it exactly.
        os.chmod(path, DIR_MODE)
    return path


def write_private(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, mode 0600 whatever the umask."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return path


def write_private_text(path: Path, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path``, as :func:`write_private` does."""
    return write_private(path, text.encode("utf-8"))


class StateBusy(ConfigError):
    """Another moodle-bridge process holds the state directory."""


@contextlib.contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold the state directory for one process, for the ``with`` block.

    Two runs on one state at once would each plan from a state the other is changing: the
    second raises StateBusy at once instead. The lock is the kernel's (``flock``), so it is
    released whatever happens to the process, a crash or ``kill -9`` included.
    """
    private_dir(folder)
    fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            msg = (
                f"another moodle-bridge run is using the state directory {folder}; wait for it "
                "to finish (cron: do not start the next run before the last one ends)"
            )
            raise StateBusy(msg) from None
        yield
    finally:
        os.close(fd)
