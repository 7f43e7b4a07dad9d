"""Atomic file writes: a file is replaced whole, or not at all.

Checkpoints, downloads, the training history and IDX files are all written
through :func:`atomic_file`: the data goes to a temporary file in the target's
directory, is flushed to disk, and is renamed over the target (a rename within
one directory is atomic). A crash, Ctrl-C or a failed check in between leaves
the old file untouched and no temporary file behind.
"""

import os
from contextlib import contextmanager

__all__ = ["atomic_file"]


@contextmanager
def atomic_file(path):
    """A temporary file next to ``path``, renamed over it only if the block succeeds.

    On any exception (Ctrl-C included) it is deleted instead: ``path`` never holds half a file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.urandom(4).hex()}.tmp")
    # Mode 0o666 minus the umask, like open() (tempfile.mkstemp would make it private).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
