"""``solve``, the public entry point: check the inputs, run the loop, collect the outputs.

The pieces it puts together, each in its own module:

* :mod:`tinynode.step`: one Runge-Kutta step from a :class:`~tinynode.tableaus.Tableau`;
* :mod:`tinynode.loop`: the adaptive loop (accept or reject, land on stop times);
* :mod:`tinynode.controllers` and :mod:`tinynode.norms`: the step-size rule and the error norm;
* :mod:`tinynode.dense`: the solution between the steps (``saveat``, ``sol(t)``);
* :mod:`tinynode.protocol`: how the loop talks to the vector field.
"""

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from . import tableaus
from .backend import array_module
from .controllers import ConstantStepSize, IController
from .dense import DenseOutput, interpolate
from .errors import ArgumentError, DTypeError, ShapeError
from .loop import integrate
from .norms import ErrorNorm
from .protocol import BoundField, bind
from .threads import auto_blas_threads

__all__ = ["solve", "Solution", "DEFAULTS"]

#: The defaults shared by solve, solve_with_vjp and NeuralODE (OrdinaryDiffEq's: reltol 1e-3, abstol 1e-6).
DEFAULTS = {"rtol": 1e-3, "atol": 1e-6, "dt0": None, "max_steps": 100_000}


@dataclass
class Solution:
    """The result of :func:`solve`.

    Attributes:
        t: output times, a float64 NumPy array.
        y: states at those times, stacked time-first: ``(len(t), *y0.shape)``,
            on y0's device and in its dtype.
        stats: ``nf`` (evaluations of f), ``naccept`` and ``nreject`` (steps).
        dense: the :class:`~tinynode.dense.DenseOutput` with ``dense=True``, else None.

    With ``dense=True``, ``sol(t)`` evaluates the method's continuous
    extension anywhere in the span (a scalar gives ``y0.shape``, a sequence
    ``(len, *y0.shape)``). Failures raise a :class:`~tinynode.errors.SolverError`
    instead of returning a Solution.
    """

    t: np.ndarray
    y: object
    stats: dict
    dense: object = field(default=None, repr=False)

    def __call__(self, t):
        if self.dense is None:
            raise ArgumentError("this solution has no dense output; solve with dense=True")
        return self.dense(t)


def solve(
    f,
    y0,
    tspan,
    params=None,
    *,
    solver=None,
    controller=None,
    rtol=DEFAULTS["rtol"],
    atol=DEFAULTS["atol"],
    dt0=None,
    max_steps=DEFAULTS["max_steps"],
    saveat=None,
    save_start=True,
    dense=False,
    on_step=None,
) -> Solution:
    """Solve ``dy/dt = f(t, y, params)``, ``y(t0) = y0``, over ``tspan = (t0, t1)``.

    Arguments:
        f: the vector field, ``f(t, y, params) -> dy/dt`` with ``y``'s shape and
            dtype (:mod:`tinynode.protocol`).
        y0: the initial state, any shape, float32 or float64, NumPy or CuPy. The
            whole array is ONE system with one step sequence (a batch of 128
            20-vectors is a 2560-dimensional ODE, as in the tutorial).
        tspan: ``(t0, t1)``; ``t1 < t0`` integrates backward in time.
        params: passed through to ``f``.
        solver: a tableau, ``tinynode.Tsit5()`` by default; also ``Dopri5()``,
            and the fixed-step ``RK4()`` and ``Euler()`` (which need ``dt0``).
        controller: ``IController()`` by default (as diffrax, torchdiffeq and
            torchode: fewer steps on short solves than the PI controller, see
            :func:`check_method`), ``PIController()`` (OrdinaryDiffEq's default,
            the tutorial's) or ``ConstantStepSize()`` (keep ``dt0``; fixed-step
            tableaus always do); see :mod:`tinynode.controllers` for the protocol.
        rtol, atol: tolerances, scalars or arrays broadcastable to ``y0`` (per
            component). A step is accepted when the RMS over all entries of
            ``err / (atol + rtol max(|y_n|, |y_n+1|))`` is at most 1
            (:mod:`tinynode.norms`). The defaults are OrdinaryDiffEq's (the
            Lux tutorial sets ``atol=1e-3``).
        dt0: the first step size (magnitude); by default Hairer's heuristic.
        max_steps: the most step attempts (accepted plus rejected) allowed.
        saveat: times at which to return the state (within the span, ordered
            along the direction of integration). They do not constrain the
            steps: values come from the method's continuous extension, except
            ``t1``, which every solve lands on exactly. ``None`` returns the
            state after every accepted step.
        save_start: with ``saveat=None``, whether ``t0`` is the first output.
        dense: keep every step so that ``sol(t)`` works anywhere in the span.
        on_step: called after each accepted step as ``on_step(t, t_new, h, B, y_new)``
            with the step's table ``B = [y_n, k_1..k_s]`` (reused: copy what you keep).

    Returns:
        a :class:`Solution`; ``sol.stats["blas_threads"]`` says how many BLAS threads
        ran, chosen from the field's size (:mod:`tinynode.threads`). Failures raise a
        :class:`~tinynode.errors.SolverError` (``MaxStepsExceeded``, ``StepSizeUnderflow``,
        ``NonFiniteError``) whose message names the time reached and what to try.
    """
    if not (callable(f) or isinstance(f, BoundField)):
        raise ArgumentError(f"f must be a vector field, a callable f(t, y, params); got {f!r}")
    tableau, controller = check_method(solver, controller, dt0)
    check_state(y0)
    t0, t1 = check_span(tspan)
    xp, shape, dtype = array_module(y0), y0.shape, y0.dtype
    y_flat = xp.ascontiguousarray(y0).reshape(-1)
    norm = ErrorNorm(*flat_tolerances(rtol, atol, y0), y_flat.size, dtype, xp)
    dt0 = check_dt0(dt0, t0, t1)
    saver = _Saver(tableau, y_flat, t0, t1, saveat, save_start, dense, shape, on_step)
    bound = bind(f, params, shape, dtype)
    with auto_blas_threads(bound) as threads:
        _, stats = integrate(bound, y_flat, (t0, t1), solver=tableau, controller=controller, norm=norm, dt0=dt0,
                             max_steps=check_max_steps(max_steps), on_step=saver.on_step)  # fmt: skip
    stats["blas_threads"] = threads
    t_out, y_out = saver.result()
    return Solution(t_out, y_out.reshape((len(t_out),) + shape), stats, saver.dense)


class _Saver:
    """Collects the outputs of a solve from its accepted steps (``saveat``, every step, dense)."""

    def __init__(self, tableau, y0, t0, t1, saveat, save_start, dense, shape, also=None):
        self.tableau, self.t1, self.direction = tableau, t1, (1.0 if t1 > t0 else -1.0)
        self.also = also  # the caller's own on_step
        self.dense = DenseOutput(tableau, shape, t0, t1) if dense else None
        self.times = None if saveat is None else check_saveat(saveat, t0, t1, self.direction)
        if self.times is None:
            self.saved_t, self.saved_y = ([t0], [y0.copy()]) if save_start else ([], [])
            return
        self.out = array_module(y0).empty((len(self.times), y0.size), dtype=y0.dtype)
        self.pending = 0
        while self.pending < len(self.times) and self.times[self.pending] == t0:
            self.out[self.pending] = y0
            self.pending += 1

    def on_step(self, t, t_new, h, B, y_new):
        """Record an accepted step: dense output, and the save times it passed."""
        if self.also is not None:
            self.also(t, t_new, h, B, y_new)
        if self.dense is not None:
            self.dense.append(t, h, B)
        if self.times is None:
            self.saved_t.append(t_new)
            self.saved_y.append(y_new.copy())
            return
        while self.pending < len(self.times) and self.direction * (self.times[self.pending] - t_new) <= 0:
            tau = self.times[self.pending]
            if tau == t_new or tau == self.t1:
                self.out[self.pending] = y_new
            else:  # inside the step: the continuous extension
                interpolate(self.tableau, B, h, (tau - t) / h, out=self.out[self.pending])
            self.pending += 1

    def result(self):
        """``(times, states)`` saved, states stacked time-first and flat."""
        if self.times is not None:
            return np.asarray(self.times), self.out
        self.saved_t[-1] = self.t1  # the last step lands on t1 exactly; make the float exact too
        return np.asarray(self.saved_t), array_module(self.saved_y[0]).stack(self.saved_y)


# -- input checks (shared with solve_with_vjp and NeuralODE) ---------------------------------


def check_method(solver, controller, dt0):
    """``(tableau, controller)``: Tsit5 and the I controller by default; fixed-step tableaus keep dt0.

    Why not OrdinaryDiffEq's PI controller, the tutorial's: its start-up damping makes
    short solves take more steps (the scaling benchmark's Neural ODE blocks: 20-26
    evaluations per solve against the I controller's 14; docs/solvers.md). diffrax,
    torchdiffeq and torchode default to an I controller too."""
    tableau = tableaus.TSIT5 if solver is None else solver
    if not isinstance(tableau, tableaus.Tableau):
        raise ArgumentError(f"solver must be a tableau such as tinynode.Tsit5(), got {solver!r}")
    if not tableau.adaptive:
        if dt0 is None:
            raise ArgumentError(f"{tableau!r} is a fixed-step method: give the step size with dt0=")
        if controller is not None and not isinstance(controller, ConstantStepSize):
            raise ArgumentError(f"{tableau!r} has no error estimate, so {controller!r} cannot adapt its steps: "
                                "leave controller out (it keeps dt0)")  # fmt: skip
        return tableau, ConstantStepSize()
    if controller is None:
        return tableau, IController()
    if isinstance(controller, type):
        raise ArgumentError(f"controller must be an instance, e.g. {controller.__name__}(), not the class itself")
    if not all(hasattr(controller, m) for m in ("init", "adapt", "qmin")):
        raise ArgumentError(
            f"controller must be a step-size controller such as tinynode.PIController(), got {controller!r}"
        )
    return tableau, controller


def check_state(y0):
    """``y0`` must be a non-empty float32 or float64 array."""
    if not hasattr(y0, "dtype") or y0.dtype.kind != "f" or y0.dtype.itemsize not in (4, 8):
        raise DTypeError(
            f"y0 must be a float32 or float64 array, got {getattr(y0, 'dtype', type(y0).__name__)}; "
            "cast it first, e.g. y0.astype(numpy.float32)."
        )
    if y0.size == 0:
        raise ShapeError("y0 is empty")


def check_span(tspan):
    """``(t0, t1)`` as floats: finite, distinct, given as a pair."""
    if not (isinstance(tspan, (tuple, list)) or hasattr(tspan, "shape")):  # (a set has no order)
        raise ArgumentError(f"tspan must be a pair of numbers (t0, t1), got {tspan!r}")
    try:
        t0, t1 = (float(x) for x in tspan)
    except (TypeError, ValueError):
        raise ArgumentError(f"tspan must be a pair of numbers (t0, t1), got {tspan!r}") from None
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ArgumentError(f"tspan must be finite, got ({t0}, {t1})")
    if t0 == t1:
        raise ArgumentError(f"tspan has zero length ({t0}, {t1}); t1 must differ from t0")
    return t0, t1


def check_dt0(dt0, t0=0.0, t1=1.0):
    """The first step as a float (None: chosen by the solver); it must be able to move t from t0."""
    if dt0 is None:
        return None
    try:
        value = float(dt0)
    except (TypeError, ValueError):
        raise ArgumentError(f"dt0 must be a number, got {dt0!r}") from None
    if not math.isfinite(value) or value == 0:
        raise ArgumentError(f"dt0 must be a non-zero finite number, got {dt0}")
    smallest = 4 * math.ulp(max(abs(t0), abs(t1)))
    if abs(value) <= smallest:
        raise ArgumentError(
            f"dt0 = {dt0} is too small to move t in ({t0}, {t1}) (float64 resolves steps above {smallest:.1e} "
            "there); give a larger dt0, or leave it out to let the solver choose"
        )
    return value


def check_max_steps(max_steps):
    """``max_steps`` as a positive int."""
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ArgumentError(f"max_steps must be a positive integer, got {max_steps!r}")
    return int(max_steps)


def check_tolerance(name, tol):
    """A float, or for an array tolerance the array (after checking it is finite and of the right sign)."""
    need = "positive" if name == "atol" else "non-negative"
    if isinstance(tol, (float, int)) and not isinstance(tol, bool):  # the common case, without array calls
        if math.isfinite(tol) and (tol > 0 or (tol == 0 and name == "rtol")):
            return float(tol)
        arr = np.asarray(float(tol))
    else:
        if isinstance(tol, (str, bytes, complex)) or np.iscomplexobj(tol):
            raise ArgumentError(f"{name} must be a real number or an array of them, got {tol!r}")
        try:
            arr = np.asarray(tol.get() if hasattr(tol, "get") else tol, dtype=np.float64)
        except (TypeError, ValueError):
            raise ArgumentError(f"{name} must be a number or an array of numbers, got {tol!r}") from None
        if arr.size and np.all(np.isfinite(arr)) and np.all(arr > 0 if name == "atol" else arr >= 0):
            return float(arr) if arr.ndim == 0 else tol
    hint = " (for a purely relative tolerance use a tiny atol such as 1e-12)" if name == "atol" else ""
    raise ArgumentError(f"{name} must be finite and {need}{hint}, got {tol!r}")


def flat_tolerances(rtol, atol, y0):
    """The checked tolerances as floats, or as flat arrays of y0's size for per-component ones."""
    result = []
    for name, tol in (("rtol", rtol), ("atol", atol)):
        tol = check_tolerance(name, tol)
        if not isinstance(tol, float):
            xp = array_module(y0)
            try:
                tol = xp.broadcast_to(xp.asarray(tol, dtype=y0.dtype), y0.shape)
            except ValueError:
                raise ArgumentError(
                    f"{name} of shape {np.shape(tol)} does not broadcast to the state's shape "
                    f"{y0.shape}; give a scalar or an array of that shape"
                ) from None
            tol = xp.ascontiguousarray(tol).reshape(-1)
        result.append(tol)
    return result


def check_saveat(saveat, t0, t1, direction):
    """The save times as a list of floats: finite, ordered along the direction, within the span."""
    items = saveat.tolist() if hasattr(saveat, "tolist") else saveat  # a NumPy/CuPy array, or a scalar in one
    if isinstance(items, (range, tuple)) or (hasattr(items, "__iter__") and not isinstance(items, (str, bytes, list))):
        items = list(items)  # a range, a generator
    items = items if isinstance(items, list) else [items]
    if not items or not all(isinstance(t, numbers.Real) and not isinstance(t, (bool, np.bool_)) for t in items):
        raise ArgumentError(f"saveat must be a non-empty 1-D sequence of numbers (times), got {saveat!r}")
    times = [float(t) for t in items]
    if not all(math.isfinite(t) for t in times):
        raise ArgumentError(f"saveat must hold finite times, got {times}")
    if any(direction * (b - a) < 0 for a, b in zip(times, times[1:])):
        raise ArgumentError("saveat must be ordered along the direction of integration")
    if direction * (times[0] - t0) < 0 or direction * (times[-1] - t1) > 0:
        raise ArgumentError(f"saveat times must lie within tspan ({t0}, {t1})")
    return times
