"""Fused GPU kernels: one CuPy launch where the NumPy code makes several.

On a CPU an array call costs about a microsecond of Python and dispatch, and
tinynode's code is written as short sequences of in-place NumPy calls. On a GPU
each of those calls is a kernel launch (several microseconds, and a pass over
memory), so for the tutorial's small states the launches, not the arithmetic,
set the pace. This module fuses the sequences that run on every step or every
evaluation into single kernels with CuPy's ``ElementwiseKernel`` and
``ReductionKernel``:

=====================  ==========================================  ==========
what                   the NumPy sequence                          kernels
=====================  ==========================================  ==========
error norm (per step)  ``|y|, |y'|, max, *rtol, +atol, e/sc, dot``  7 -> 1
Adam update            moments, bias correction, update            11 -> 1
bias + activation      ``z += b; act(z)``                          2 -> 1
activation VJP         e.g. ``g * (1 - y*y)`` for tanh             3 -> 1
=====================  ==========================================  ==========

Each function takes the array module ``xp`` and falls back to the NumPy
sequence when ``xp`` has no ``ElementwiseKernel`` (NumPy, or the CPU stand-in
of the tests) or when ``TINYNODE_FUSED=0`` is set, so the CPU path is exactly
the code it always was. ``tests/test_gpu.py`` checks every fused kernel against
its sequence on a CUDA device.
"""

import math
import os

__all__ = ["enabled", "error_norm_sq", "adam_update", "bias_activation", "activation_vjp"]

_KERNELS = {}


_CAN_FUSE = {}  # array module -> whether it has ElementwiseKernel (asked on every solve and Adam step)


def enabled(xp):
    """True when ``xp`` is CuPy (it can build kernels) and fusion is not switched off."""
    can = _CAN_FUSE.get(xp)
    if can is None:  # hasattr on NumPy goes through its module __getattr__: a microsecond each time
        can = _CAN_FUSE[xp] = hasattr(xp, "ElementwiseKernel")
    return can and os.environ.get("TINYNODE_FUSED", "1") != "0"


def _kernel(xp, name, build):
    # Built once per process; CuPy compiles each kernel at its first call per dtype.
    if name not in _KERNELS:
        _KERNELS[name] = build(xp)
    return _KERNELS[name]


# -- the step's error norm --------------------------------------------------------

#: The kernels' CUDA code, kept as data so that a test can compile it (tests/test_fused.py).
NORM_PREAMBLE = "__device__ double tinynode_sq(double x) { return x * x; }"
NORM_MAP = "tinynode_sq((double)e / (atol + rtol * max(fabs((double)y), fabs((double)yn))))"
ADAM_BODY = """
m = (T)(b1 * m + (1.0 - b1) * g);
v = (T)(b2 * v + (1.0 - b2) * (double)g * g);
p = (T)(p - step * m / (sqrt((double)v) * v_scale + eps));
"""


def error_norm_sq(xp, err, y, y_new, rtol, atol):
    """``sum_i (err_i / (atol + rtol max(|y_i|, |y_new_i|)))^2`` as a 0-d float64 array.

    The squared RMS error norm of docs/solvers.md times the length; scalar
    tolerances only (the caller uses its NumPy sequence for per-component ones).
    """
    kernel = _kernel(
        xp,
        "error_norm_sq",
        lambda xp: xp.ReductionKernel(
            "T e, T y, T yn, float64 rtol, float64 atol",
            "float64 s",
            NORM_MAP,
            "a + b",
            "s = a",
            "0",
            "tinynode_error_norm_sq",
            preamble=NORM_PREAMBLE,
        ),
    )
    return kernel(err, y, y_new, float(rtol), float(atol))


# -- Adam --------------------------------------------------------------------------


def adam_update(xp, params, grads, m, v, lr, b1, b2, eps, t):
    """One Adam step in place (the formula of :class:`tinynode.optim.Adam`), one kernel.

    ``step = lr / (1 - b1^t)`` and ``v_scale = 1 / sqrt(1 - b2^t)`` are the bias
    corrections, computed once on the host.
    """
    kernel = _kernel(
        xp,
        "adam",
        lambda xp: xp.ElementwiseKernel(
            "T g, float64 b1, float64 b2, float64 step, float64 v_scale, float64 eps",
            "T p, T m, T v",
            ADAM_BODY,
            "tinynode_adam",
        ),
    )
    kernel(grads, b1, b2, lr / (1 - b1**t), 1 / math.sqrt(1 - b2**t), eps, params, m, v)


# -- Dense layers ----------------------------------------------------------------------

#: activation name -> (y from z, d loss/dz from y and g = d loss/dy), as CUDA expressions: the
#: functions of tinynode.nn.ACTIVATIONS, written so that they are also valid Python over NumPy
#: (tests/test_fused.py evaluates them on the CPU against those definitions, value by value).
ACTIVATION_CODE = {
    "identity": ("z", "g"),
    "tanh": ("tanh(z)", "g * (1 - y * y)"),
    "sigmoid": ("1 / (1 + exp(-z))", "g * y * (1 - y)"),
    "relu": ("fmax(z, 0 * z)", "g * (y > 0)"),
    "softplus": ("fmax(z, 0 * z) + log1p(exp(-fabs(z)))", "-g * expm1(-y)"),
}


def bias_activation(xp, z, b, activation):
    """``z = act(z + b)`` in place (``b`` broadcast over the rows); returns ``z``."""
    forward, _ = ACTIVATION_CODE[activation]
    kernel = _kernel(
        xp,
        "bias_" + activation,
        lambda xp: xp.ElementwiseKernel("T b", "T z", f"z = z + b; z = {forward};", f"tinynode_bias_{activation}"),
    )
    kernel(b, z)
    return z


def activation_vjp(xp, y, g, activation):
    """``d loss/dz`` from the layer's output ``y = act(z)`` and ``g = d loss/dy`` (a new array)."""
    _, backward = ACTIVATION_CODE[activation]
    kernel = _kernel(
        xp,
        "vjp_" + activation,
        lambda xp: xp.ElementwiseKernel("T y, T g", "T gz", f"gz = {backward};", f"tinynode_vjp_{activation}"),
    )
    return kernel(y, g)
