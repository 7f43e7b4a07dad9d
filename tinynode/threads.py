"""BLAS threads: how many cores the matrix products of a solve use, chosen from their size.

A vector field built from Dense layers spends its arithmetic in matrix
products, and a threaded BLAS splits each product across cores. That pays only
when a product is big enough to cover the hand-off: on the 2-core development
CPU (``benchmarks/scaling.py``, one gradient with ``DiscreteAdjoint``), two
threads against one took

=================  ===========================  ===========
D, H, batch         largest product (mult-adds)  2t / 1t
=================  ===========================  ===========
20, 10, 128         25,600                       1.03
20, 10, 2,048       409,600                      1.00
20, 10, 8,192       1,638,400                    0.89
64, 64, 256         1,048,576                    0.84
64, 256, 1,024      67,108,864                   0.74-0.77
=================  ===========================  ===========

and one thread is also what keeps small solves fast when other work shares
the cores (:func:`blas_threads`). So a solve whose field reports its largest
product (``BoundField.largest_product``; the MLP fast path does) runs with one
thread below :data:`THREADED_PRODUCT` multiply-adds and with every core the BLAS
started with above it; a field that does not report one leaves BLAS as it is.
An enclosing :func:`blas_threads` block (``fit(blas_threads=1)``) overrides
the choice. Needs ``threadpoolctl``; without it nothing is changed.
"""

from contextlib import contextmanager

from .errors import ArgumentError

__all__ = ["blas_threads", "auto_blas_threads", "threads_for", "THREADED_PRODUCT"]

#: The size (multiply-adds of one matrix product) from which more BLAS threads pay (the table above).
THREADED_PRODUCT = 1_000_000

_state = {"controller": None, "pinned": None}


def _controller():
    """One threadpoolctl controller for the process (making one scans the loaded libraries: slow), or None."""
    if _state["controller"] is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _state["controller"] = False
        else:
            controller = ThreadpoolController().select(user_api="blas")
            _state["controller"] = controller if controller.lib_controllers else False
    return _state["controller"] or None


def _cores():
    """The threads the BLAS started with (its own choice for this machine)."""
    controller = _controller()
    if "cores" not in _state:
        _state["cores"] = max([lib.num_threads for lib in controller.lib_controllers] + [1]) if controller else 1
    return _state["cores"]


@contextmanager
def blas_threads(n=1, solves_choose=False):
    """Limit the CPU's BLAS (OpenBLAS, MKL, ...) to ``n`` threads inside the block.

    Why: the tutorial's model multiplies tiny matrices ((128, 20) by (20, 10)),
    where BLAS threads cannot pay for their hand-offs, and when the other cores
    are busy a threaded BLAS waits for them: on the 2-core development machine,
    with a busy loop on the other core, a steady epoch of the tutorial's model
    took 0.019 s with one thread and 0.135 s with two (0.017 s either way when
    idle). Inside the block the solves' automatic choice (:func:`auto_blas_threads`)
    is off, unless ``solves_choose``: then ``n`` holds for everything else
    (``fit``'s default: the layers around a Neural ODE at one thread, each solve
    as its size says). Needs ``threadpoolctl``; without it, or with ``n=None``,
    the block runs unchanged. Yields True when the limit is applied.
    """
    if n is None:
        yield False
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ArgumentError(f"blas_threads needs a positive number of threads (or None), got {n!r}")
    controller = _controller()
    if controller is None:
        yield False
        return
    outer = _state["pinned"]
    _state["pinned"] = outer if solves_choose else n
    try:
        with controller.limit(limits=n):
            yield True
    finally:
        _state["pinned"] = outer


def threads_for(field):
    """The BLAS threads for a solve of the bound ``field``: 1, every core, or None (leave BLAS as it is)."""
    size = getattr(field, "largest_product", None)
    if size is None or _controller() is None:
        return None
    return 1 if size < THREADED_PRODUCT else _cores()


@contextmanager
def auto_blas_threads(field):
    """Run the block with :func:`threads_for` ``field``'s threads; yields the count (None: BLAS untouched).

    Inside an explicit :func:`blas_threads` block, that block's count stands."""
    if _state["pinned"] is not None:
        yield _state["pinned"]
        return
    n = threads_for(field)
    if n is None:
        yield None
        return
    with _controller().limit(limits=n):
        yield n
