"""Atomic file writes: a file is replaced whole, or not at all.

Checkpoints, downloads, the training history and IDX files are all written
through :func:`atomic_file`: the data goes to a temporary file in the target's
directory, is flushed to disk, and is renamed over the target (a rename within
one directory is atomic). A crash, Ctrl-C or a failed check in between leaves
the old file untouched and no temporary file behind.

Only ``kill -9`` (or a power cut) can leave a temporary file: its name carries
the writer's process id (``.NAME.PID.RANDOM.tmp``), so the next write to the
same target deletes the ones whose process is gone (:func:`remove_stale_temporaries`).
"""

import os
import re
from contextlib import contextmanager

__all__ = ["atomic_file", "remove_stale_temporaries"]


@contextmanager
def atomic_file(path):
    """A temporary file next to ``path``, renamed over it only if the block succeeds.

    On any exception (Ctrl-C included) it is deleted instead: ``path`` never holds half a file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
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


def remove_stale_temporaries(path):
    """Delete the temporary files of writes to ``path`` whose writing process no longer runs."""
    directory = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(re.escape(f".{os.path.basename(path)}.") + r"(\d+)\.[0-9a-f]{8}\.tmp")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match and not _running(int(match.group(1))):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass  # another process cleaned it up first


def _running(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists (another user's), or we cannot tell: keep its file
    return True
