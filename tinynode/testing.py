"""Gradient checks: every hand-written derivative against central differences.

``gradcheck`` is public because writing a layer or a vector field by hand is
exactly what tinynode invites its users to do, and one call should tell them
whether their VJP is right::

    from tinynode.testing import gradcheck
    gradcheck(my_layer, params, x)              # a layer: forward/backward
    gradcheck(f, a, b, vjp=my_vjp)              # any function and its VJP
    gradcheck(field, y, params, t=0.3)          # a vector field: __call__ and vjp
    check_backward_vjp(my_layer, params, x)     # a layer's second derivative: backward_vjp

How it works. For a function ``y = f(*args)`` and a random cotangent ``gy`` the
scalar ``phi(args) = <gy, f(args)>`` has gradient ``vjp(*args, gy)``. Each
component of that gradient is compared with the central difference
``(phi(x + eps e_j) - phi(x - eps e_j)) / (2 eps)`` (error O(eps^2)); inputs
too large for that are checked along random directions instead (the
"dot-product test" of HIPS/autograd: ``<vjp, d>`` against the directional
difference). Everything runs in float64, where eps = 1e-6 leaves a relative
error around 1e-9 for smooth functions.
"""

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from .backend import array_module, item
from .errors import ArgumentError, GradcheckError

__all__ = ["gradcheck", "check_backward_vjp", "GradcheckReport"]


@dataclass
class GradcheckReport:
    """Outcome of :func:`gradcheck`.

    ``errors[i]`` is the relative error for argument ``i`` (None when that
    argument is not differentiable), ``names[i]`` its name (``params``, ``x``,
    ``y``, or ``argument i`` for a plain function), ``max_rel_error`` the worst
    of them, and ``ok`` whether it is within ``tol``.
    """

    max_rel_error: float
    tol: float
    errors: list = field(default_factory=list)
    method: list = field(default_factory=list)
    names: list = field(default_factory=list)

    @property
    def ok(self):
        return self.max_rel_error <= self.tol

    def __str__(self):
        lines = [f"gradcheck: worst relative error {self.max_rel_error:.3e} (tolerance {self.tol:.1e})"]
        names = self.names or [f"argument {i}" for i in range(len(self.errors))]
        for name, err, how in zip(names, self.errors, self.method):
            if err is not None:
                lines.append(f"  {name}: {err:.3e} ({how})")
        return "\n".join(lines)


def _as_float64(a):
    if hasattr(a, "dtype") and a.dtype.kind == "f":
        xp = array_module(a)
        return xp.array(a, dtype=np.float64)  # a private copy we may perturb
    return a


def _layer_functions(layer):
    def f(params, x):
        return layer.forward(params, x)[0]

    def vjp(params, x, gy):
        _, ctx = layer.forward(params, x)
        gx, gparams = layer.backward(params, ctx, gy)
        return gparams, gx

    return f, vjp


def _field_functions(field, t):
    def f(y, params):
        return field(t, y, params)

    def vjp(y, params, gy):
        return field.vjp(t, y, params, gy)

    return f, vjp


def _backward_functions(layer, shapes):
    """The layer's VJP ``(x, params, gy) -> [gx, gparams]`` (flat, concatenated) and its VJP, ``backward_vjp``."""
    n_x = math.prod(shapes[0])

    def f(x, params, gy):
        _, ctx = layer.forward(params, x)
        gx, gp = layer.backward(params, ctx, gy)
        return array_module(gp).concatenate([gx.reshape(-1), gp])

    def vjp(x, params, gy, c):
        _, ctx = layer.forward(params, x)
        return layer.backward_vjp(params, ctx, gy, c[:n_x].reshape(x.shape), c[n_x:])

    return f, vjp


def check_backward_vjp(layer, params, x, gy=None, *, seed=0, raise_on_failure=True, **options):
    """Check a layer's second derivative, ``backward_vjp``, against central differences of its
    ``backward`` in ``x``, ``params`` and the output gradient ``gy`` (random unless given).

    ``backward`` maps ``(x, params, gy)`` to ``(gx, gparams)``; ``backward_vjp``
    claims to be that map's VJP, so this is :func:`gradcheck` applied to it.
    ``options`` are gradcheck's (``eps``, ``tol``, ...). Returns its report.
    """
    if not hasattr(layer, "backward_vjp"):
        raise ArgumentError(f"{layer!r} has no backward_vjp (the derivative of its VJP) to check")
    x, params = _as_float64(x), _as_float64(params)
    y = layer(params, x)
    xp = array_module(x)
    gy = xp.asarray(np.random.default_rng(seed + 1).standard_normal(y.shape)) if gy is None else _as_float64(gy)
    f, vjp = _backward_functions(layer, [x.shape])
    report = gradcheck(f, x, params, gy, vjp=vjp, seed=seed, raise_on_failure=False, **options)
    report.names = ["x", "params", "gy"]
    if raise_on_failure and not report.ok:
        raise GradcheckError(str(report))
    return report


def _relative(fd, an):
    diff = float(abs(fd - an).max()) if fd.size else 0.0
    scale = max(float(abs(fd).max()) if fd.size else 0.0, float(abs(an).max()) if an.size else 0.0)
    return diff / (scale + 1e-8)


def gradcheck(
    fun, *args, vjp=None, t=0.0, eps=1e-6, tol=1e-6, seed=0, full_max=2048, directions=3, raise_on_failure=True
):
    """Check a VJP against central finite differences in float64.

    Arguments:
        fun: a layer (an object with ``forward``/``backward``; then ``args`` are
            ``(params, x)``), a vector field (callable with a ``vjp`` method;
            then ``args`` are ``(y, params)``, checked at time ``t``), or a
            function ``fun(*args) -> array`` given with ``vjp``.
        *args: the point to check at. Floating arrays are copied to float64;
            anything else (integer labels, Python scalars) is passed through
            and not differentiated.
        vjp: ``vjp(*args, gy) -> tuple`` of cotangents, one per argument
            (``None`` for an argument it does not differentiate).
        eps: the finite-difference step.
        tol: the largest acceptable relative error, ``max |fd - vjp| / max |.|``.
        seed: seeds the random cotangent and directions.
        full_max: arguments with at most this many entries are checked entry by
            entry; larger ones along ``directions`` random directions.
        raise_on_failure: raise :class:`~tinynode.errors.GradcheckError` when the
            error exceeds ``tol`` (otherwise just return the report).

    Returns:
        a :class:`GradcheckReport`.
    """
    _check_settings(eps, tol, full_max, directions)
    eps, tol = float(eps), float(tol)  # (a float32 eps would round the differences to float32)
    names = [f"argument {i}" for i in range(len(args))]
    if vjp is None:
        if hasattr(fun, "forward") and hasattr(fun, "backward"):
            (fun, vjp), names = _layer_functions(fun), ["params", "x"]
        elif callable(fun) and hasattr(fun, "vjp"):
            (fun, vjp), names = _field_functions(fun, t), ["y", "params"]
        else:
            raise ArgumentError("gradcheck needs a layer, a vector field, or a function together with vjp=")
    args = [_as_float64(a) for a in args]
    xp = array_module(*[a for a in args if hasattr(a, "dtype")])
    rng = np.random.default_rng(seed)
    gy = xp.asarray(rng.standard_normal(np.shape(fun(*args))))

    def phi():
        return item((gy * fun(*args)).sum())

    grads = vjp(*args, gy)
    if not isinstance(grads, (tuple, list)) or len(grads) != len(args):
        raise ArgumentError(f"vjp must return one cotangent per argument ({len(args)}), got {type(grads).__name__}")
    errors, methods = [], []
    for name, a, g in zip(names, args, grads):
        if g is None or not (hasattr(a, "dtype") and a.dtype.kind == "f"):
            errors.append(None)
            methods.append(None)
            continue
        if g.shape != a.shape:
            raise GradcheckError(f"the VJP returned shape {g.shape} for {name}, of shape {a.shape}")
        g_host = np.asarray(g.get() if hasattr(g, "get") else g, dtype=np.float64).reshape(-1)
        if a.size <= full_max:
            errors.append(_relative(_every_entry(a.reshape(-1), phi, eps), g_host))
            methods.append("every entry")
        else:
            fd, an = _random_directions(a, g_host, phi, eps, rng, directions, xp)
            errors.append(_relative(fd, an))
            methods.append(f"{directions} random directions")
    checked = [e for e in errors if e is not None]
    worst = math.nan if any(math.isnan(e) for e in checked) else max(checked, default=0.0)  # NaN fails
    report = GradcheckReport(worst, tol, errors, methods, names)
    if raise_on_failure and not report.ok:
        raise GradcheckError(str(report))
    return report


def _check_settings(eps, tol, full_max, directions):
    """Settings under which the check checks something (eps = 0 divides by zero; no directions checks nothing)."""
    for name, value in (("eps", eps), ("tol", tol)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
            raise ArgumentError(f"gradcheck's {name} must be a finite positive number, got {value!r}")
    for name, value, least in (("full_max", full_max, 0), ("directions", directions, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
            raise ArgumentError(f"gradcheck's {name} must be an integer of at least {least}, got {value!r}")


def _every_entry(flat, phi, eps):
    """Central differences of ``phi`` in each entry of ``flat`` (a view: perturbing it perturbs the argument)."""
    fd = np.empty(flat.size)
    for j in range(flat.size):
        old = item(flat[j])
        flat[j] = old + eps
        up = phi()
        flat[j] = old - eps
        down = phi()
        flat[j] = old
        fd[j] = (up - down) / (2 * eps)
    return fd


def _random_directions(a, g_host, phi, eps, rng, directions, xp):
    """``(directional differences, <VJP, direction>)`` along random unit directions (the dot-product test)."""
    fds, ans = [], []
    base = a.copy()
    for _ in range(directions):
        d = rng.standard_normal(a.size)
        d /= np.linalg.norm(d)
        d_dev = xp.asarray(d).reshape(a.shape)
        a[...] = base + eps * d_dev
        up = phi()
        a[...] = base - eps * d_dev
        down = phi()
        a[...] = base
        fds.append((up - down) / (2 * eps))
        ans.append(float(g_host @ d))
    return np.array(fds), np.array(ans)
