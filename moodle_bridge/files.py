"""Files the bridge writes that hold personal data: owner-only, written atomically.

Reports, proposed-suspension lists, plan files and exports name people by NIP, so every one of
them is created mode 0600 (whatever the umask) and replaces its old version in one rename: a
reader never sees half a file, and a crash never leaves one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "private_dir", "write_private", "write_private_text"]

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
