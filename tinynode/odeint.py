"""The adaptive Runge-Kutta loop, and ``solve``, the public entry point.

How one step works (any explicit tableau; Tsit5 shown). All stage values live
in ONE preallocated buffer ``B`` of shape ``(s + 1, N)``: row 0 is ``y_n``,
rows 1..s are ``k_1..k_s``. Then every Runge-Kutta combination is a single
matrix-vector product::

    Y_i     = [1, h a_i1, ..., h a_i,i-1] @ B[:i]       (the stage input)
    k_i     = f(t_n + c_i h, Y_i)
    y_n+1   = Y_s                                       (FSAL: b = last row of a)
    err     = h * btilde @ [k_1..k_s]                   (5th minus embedded 4th order)
    EEst    = RMS(err / (atol + rtol * max(|y_n|, |y_n+1|)))

so a Tsit5 step costs six evaluations of ``f`` (k_1 is the previous step's
k_7), six products, a handful of calls for the error norm, and exactly one
device-to-host synchronisation: reading ``EEst`` to decide acceptance. A
:class:`~tinynode.VectorField` writes each ``k_i`` straight into its row of
``B`` (:meth:`~tinynode.VectorField.freeze`); any other ``f`` returns a fresh
array, which is checked and copied there. Time and step size are Python floats
(float64) throughout; the state keeps its own dtype.

The step-size controller (:mod:`tinynode.stepsize`) alone decides accept or
reject; the tableau (:mod:`tinynode.tableaus`) alone knows the coefficients.
"""

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

from . import fused, tableaus
from .backend import array_module, item
from .errors import ArgumentError, DTypeError, MaxStepsExceeded, NonFiniteError, ShapeError, StepSizeUnderflow
from .field import VectorField
from .stepsize import PIController, initial_step

__all__ = ["solve", "Solution", "integrate"]

_MAX_NONFINITE_RETRIES = 10


@dataclass
class Solution:
    """The result of :func:`solve`.

    Attributes:
        t: output times, a float64 NumPy array.
        y: states at those times, stacked time-first: ``(len(t), *y0.shape)``,
            on y0's device and in its dtype.
        stats: ``nf`` (evaluations of f), ``naccept`` and ``nreject`` (steps).
        status: ``"success"`` (failures raise a :class:`~tinynode.errors.SolverError`).

    With ``dense=True``, ``sol(t)`` evaluates the method's continuous
    extension anywhere in the span (a scalar gives ``y0.shape``, a sequence
    ``(len, *y0.shape)``).
    """

    t: np.ndarray
    y: object
    stats: dict
    status: str = "success"
    dense: object = field(default=None, repr=False)

    def __call__(self, t):
        if self.dense is None:
            raise ArgumentError("this solution has no dense output; solve with dense=True")
        return self.dense(t)


class DenseOutput:
    """The continuous extension of an accepted step sequence.

    Keeps, per accepted step, its start ``t_n``, size ``h_n`` and the buffer
    ``[y_n, k_1..k_s]``; evaluating at ``t`` finds the step and applies
    ``y_n + h sum_i b_i(theta) k_i`` with ``theta = (t - t_n) / h``.
    """

    def __init__(self, tableau, shape, t0, t1):
        self.tableau, self.shape = tableau, shape
        self.t0, self.t1 = t0, t1
        self.ts, self.hs, self.buffers = [], [], []
        self._direction = 1.0 if t1 > t0 else -1.0
        self._keys = []  # direction * t_n, increasing: what bisect searches
        self._polys = {}  # step index -> its polynomial's coefficients (at most two steps kept)

    def append(self, t, h, B):
        self._keys.append(self._direction * t)
        self.ts.append(t)
        self.hs.append(h)
        self.buffers.append(B.copy())

    def at(self, t):
        """The flat state at time ``t`` (no range check: the adjoints' fast path).

        The interpolant is a polynomial in ``theta`` (Tsitouras 2011; docs/solvers.md),
        ``y_n + h sum_i b_i(theta) k_i = C_0 + C_1 theta + ... + C_q theta^q``,
        so the step's coefficients ``C = P(h) @ [y_n, k_1..k_s]`` are computed
        once and each evaluation is the single product ``[1, theta, ..] @ C``.
        An adjoint asks for many times inside one step before moving on to the
        next, so at most two steps' ``C`` are kept (a third clears them).
        """
        n = self._step_of(t)
        C = self._coefficients(n)
        xp = array_module(C)
        return xp.dot(xp.asarray(self._powers(t, n, C.shape[0]), dtype=C.dtype), C)

    def at_many(self, times):
        """The flat states at several times, ``(len(times), N)``: one product per step touched.

        Times in the same step are taken together when they are next to each
        other, as an adjoint's stage times (sorted along the direction) are;
        any order gives the same values.
        """
        steps = [self._step_of(t) for t in times]
        C = self._coefficients(steps[0] if steps else len(self.ts) - 1)
        xp = array_module(C)
        out = xp.empty((len(times), C.shape[1]), dtype=C.dtype)
        start = 0
        for end in range(1, len(times) + 1):
            if end == len(times) or steps[end] != steps[start]:
                n = steps[start]
                C = self._coefficients(n)
                powers = [self._powers(t, n, C.shape[0]) for t in times[start:end]]
                xp.dot(xp.asarray(powers, dtype=C.dtype), C, out=out[start:end])
                start = end
        return out

    def _step_of(self, t):
        n = bisect.bisect_right(self._keys, self._direction * t) - 1
        return min(max(n, 0), len(self.ts) - 1)

    def _coefficients(self, n):
        C = self._polys.get(n)
        if C is None:
            if len(self._polys) >= 2:
                self._polys.clear()
            C = self._polys[n] = _polynomial(self.tableau, self.buffers[n], self.hs[n])
        return C

    def _powers(self, t, n, count):
        theta = (t - self.ts[n]) / self.hs[n]
        powers = [1.0, theta]
        for _ in range(count - 2):
            powers.append(powers[-1] * theta)
        return powers

    def _one(self, t):
        if not (min(self.t0, self.t1) <= t <= max(self.t0, self.t1)):
            raise ArgumentError(f"t = {t} lies outside the solved span [{self.t0}, {self.t1}]")
        return self.at(t).reshape(self.shape)

    def __call__(self, t):
        if np.ndim(t) == 0:
            return self._one(float(t))
        rows = [self._one(float(ti)) for ti in np.asarray(t, dtype=np.float64)]
        return array_module(rows[0]).stack(rows)


def _combine(tableau, B, h, theta, out=None):
    """``y_n + h sum_i b_i(theta) k_i`` from a step buffer ``B = [y_n, k_1..k_s]``."""
    xp = array_module(B)
    coef = np.empty(tableau.stages + 1)
    coef[0] = 1.0
    coef[1:] = h * tableau.interp_weights(theta)
    return xp.matmul(xp.asarray(coef, dtype=B.dtype), B, out=out)


def _polynomial(tableau, B, h):
    """The interpolant's coefficients ``C`` (``q+1`` rows) with ``y(t_n + theta h) = sum_p C_p theta^p``."""
    xp = array_module(B)
    q = tableau.interp.shape[1]
    P = np.zeros((q + 1, tableau.stages + 1))
    P[0, 0] = 1.0
    P[1:, 1:] = h * tableau.interp.T  # b_i(theta) = sum_p interp[i, p-1] theta^p
    return xp.matmul(xp.asarray(P, dtype=B.dtype), B)


_WEIGHTS_CACHE = {}


def _weights_template(tableau, xp, dtype):
    """Rows ``[1, a_i]`` per stage, ``[1, b]`` and ``[0, btilde]``, cast once per dtype and device."""
    key = (id(tableau), xp.__name__, np.dtype(dtype).str)
    if key not in _WEIGHTS_CACHE:
        s = tableau.stages
        w = np.zeros((s + 2, s + 1))
        w[:s, 0] = 1.0
        w[:s, 1:] = tableau.a
        w[s, 0], w[s, 1:] = 1.0, tableau.b
        if tableau.btilde is not None:
            w[s + 1, 1:] = tableau.btilde
        _WEIGHTS_CACHE[key] = xp.asarray(w, dtype=dtype)
    return _WEIGHTS_CACHE[key]


def integrate(f, y0, t0, t1, params=None, *, tableau=tableaus.TSIT5, controller=None,
              rtol=1e-3, atol=1e-6, dt0=None, max_steps=100_000, shape=None,
              tstops=(), on_step=None, on_tstop=None, on_attempt=None, error_size=None, f0=None,
              f_into=None, what="solve"):
    """Integrate ``dy/dt = f(t, y, params)`` from ``t0`` to ``t1``: the engine under every solve.

    ``y0`` is flat (``N`` entries); ``f`` sees it reshaped to ``shape``. Hooks
    (used by ``solve`` and the adjoints, not needed for plain use):

    * ``on_step(t, t_new, h, B, y_new)`` after each accepted step from ``t`` to
      ``t_new``, while ``B`` still holds ``[y_n, k_1..k_s]`` of that step and
      ``y_new`` the new state (copy what you keep: the buffers are reused);
    * ``tstops``: times the steps must land on exactly (sorted along the
      direction of integration; ``t1`` is always one);
    * ``on_tstop(t, y) -> bool``: called on landing at each tstop before t1 with the flat
      state; return True if it changed ``y`` (a jump), so FSAL is re-evaluated;
    * ``on_attempt(times)`` before each step attempt that evaluates ``f``, with
      the times ``t_n + c_i h`` at which it will (``t_n`` itself only when k_1
      is not already known; a time appears twice where two ``c_i`` are equal,
      as Tsit5's last two): an adjoint prepares all its stages at once there;
    * ``error_size``: only the first ``error_size`` entries enter the error
      norm (the seminorm of Kidger, Chen and Lyons 2021);
    * ``f0``: ``f(t0, y0)`` if the caller already has it;
    * ``f_into(t, y, out)``: ``f`` writing into ``out`` (a row of the stage
      buffer), which saves a copy per stage; a :class:`~tinynode.VectorField`
      provides one itself (:meth:`~tinynode.VectorField.freeze`).

    Returns ``(y1, stats)`` with ``y1`` the flat final state (a fresh array).
    """
    xp = array_module(y0)
    dtype = y0.dtype
    shape = y0.shape if shape is None else shape
    n = y0.size
    s = tableau.stages
    controller = PIController() if controller is None else controller
    direction = 1.0 if t1 > t0 else -1.0
    span = abs(t1 - t0)
    stops = [float(x) for x in tstops if direction * (x - t0) > 0 and direction * (x - t1) < 0] + [float(t1)]
    stats = {"nf": 0, "naccept": 0, "nreject": 0}

    # Every work array in ONE allocation. Rows 0..s are B = [y_n, k_1..k_s]; then come the
    # stage input, the new state, the error vector, |y_n|, |y_n+1| and the error scale.
    work = xp.empty((s + 7, n), dtype=dtype)
    B = work[: s + 1]
    y_stage, y_new, err, abs_y, abs_new, scale = (work[s + 1 + j] for j in range(6))
    B[0] = y0
    m = n if error_size is None else int(error_size)
    err_m, y_new_m, scale_m = err[:m], y_new[:m], scale[:m]
    abs_y_m, abs_new_m = abs_y[:m], abs_new[:m]
    xp.abs(B[0, :m], out=abs_y_m)
    rtol, atol = _flat_tolerance(xp, rtol, shape, dtype), _flat_tolerance(xp, atol, shape, dtype)
    rtol_m = rtol if isinstance(rtol, float) else rtol[:m]
    atol_m = atol if isinstance(atol, float) else atol[:m]
    template = _weights_template(tableau, xp, dtype)
    W = xp.empty_like(template)
    # Views made once, so the loop does no slicing: per stage i, its weights [1, h a_i], the
    # rows of B it combines, where its input goes (for FSAL the last stage input IS y_n+1),
    # that input as f sees it, and the row that receives k_i.
    last = s - 1 if tableau.fsal else None
    stage_rows = [W[i, : i + 1] for i in range(s)]
    stage_B = [B[: i + 1] for i in range(s)]
    stage_in = [y_new if i == last else y_stage for i in range(s)]
    stage_view = [x.reshape(shape) for x in stage_in]
    k_view = [B[i + 1].reshape(shape) for i in range(s)]
    err_row, B_k = W[s + 1, 1:], B[1:]
    y_m = B[0, :m]
    fuse_norm = fused.enabled(xp) and isinstance(rtol_m, float) and isinstance(atol_m, float)
    c = [float(ci) for ci in tableau.c]
    # A field that can be frozen for this solve (tinynode.VectorField) writes f straight into a row of B.
    frozen = f.freeze(params, shape, dtype) if f_into is None and isinstance(f, VectorField) else None
    into = f_into if frozen is None else frozen.into

    # The first stage, the finiteness of the start, and the initial step.
    if f0 is None:
        if into is None:
            _store(f(t0, y0.reshape(shape), params), t0, shape, dtype, k_view[0])
        else:
            into(t0, y0.reshape(shape), k_view[0])
        stats["nf"] += 1
    else:
        B[1] = f0
    if not math.isfinite(item(B[:2].sum())):  # one sync checks both y0 and f(t0, y0)
        which = "y0" if not math.isfinite(item(B[0].sum())) else "f(t0, y0)"
        raise NonFiniteError(f"{what}: {which} contains NaN or Inf at t0 = {t0}; the solve cannot start "
                             "(check the initial state, the model and its inputs).", t=t0)
    if dt0 is None:
        if not tableau.adaptive:
            raise ArgumentError(f"{tableau.name} is a fixed-step method: pass dt0")
        h, nf = initial_step(f, t0, B[0], B[1], params, rtol, atol, tableau.order, direction * span,
                             shape, error_size=m)
        stats["nf"] += nf
    else:
        h = direction * min(abs(float(dt0)), span)
    fixed_h = h

    t = t0
    k1_valid = True
    stop_index = 0
    ctrl_state = controller.init()
    nonfinite = 0
    eest = 0.0
    while True:
        next_stop = stops[stop_index]
        # Land exactly on the next tstop (t1 included) rather than step past it.
        landing = direction * (t + h - next_stop) >= -100 * math.ulp(max(abs(t), abs(next_stop)))
        if landing:
            h = next_stop - t
        times = [t + ci * h for ci in c]
        if on_attempt is not None and (s > 1 or not k1_valid):  # (Euler with k_1 known evaluates nothing)
            on_attempt(times if not k1_valid else times[1:])
        if not k1_valid:
            if into is None:
                _store(f(t, B[0].reshape(shape), params), t, shape, dtype, k_view[0])
            else:
                into(t, B[0].reshape(shape), k_view[0])
            stats["nf"] += 1
            k1_valid = True

        # The stages: Y_i = [1, h a_i] @ B[:i+1], k_i = f(t + c_i h, Y_i).
        xp.multiply(template, h, out=W)
        W[: s + 1, 0] = 1.0
        for i in range(1, s):
            xp.dot(stage_rows[i], stage_B[i], out=stage_in[i])
            if into is None:
                _store(f(times[i], stage_view[i], params), t, shape, dtype, k_view[i])
            else:
                into(times[i], stage_view[i], k_view[i])
        stats["nf"] += s - 1
        if last is None:
            xp.dot(W[s], B, out=y_new)

        if tableau.adaptive:
            # EEst = RMS(err / (atol + rtol max(|y_n|, |y_n+1|))): the one host sync per step.
            # (|y_n| is kept from the previous step, where it was |y_n+1|.)
            xp.dot(err_row, B_k, out=err)
            if fuse_norm:  # on a GPU: the lines below as one kernel (tinynode.fused)
                sum_sq = fused.error_norm_sq(xp, err_m, y_m, y_new_m, rtol_m, atol_m)
            else:
                xp.abs(y_new_m, out=abs_new_m)
                xp.maximum(abs_y_m, abs_new_m, out=scale_m)
                scale_m *= rtol_m
                scale_m += atol_m
                xp.divide(err_m, scale_m, out=scale_m)
                sum_sq = xp.dot(scale_m, scale_m)
            eest = math.sqrt(item(sum_sq) / m)
            if math.isfinite(eest):
                accept, h_next, ctrl_state = controller.adapt(h, eest, ctrl_state)
            else:  # NaN/Inf somewhere in the step: retry smaller, and give up with a diagnosis
                nonfinite += 1
                if nonfinite > _MAX_NONFINITE_RETRIES:
                    raise NonFiniteError(_diagnose_nonfinite(xp, B, stage_rows, tableau, t, h, what,
                                                             nonfinite), t=t)
                accept, h_next = False, h * controller.qmin
        else:
            accept, h_next = True, fixed_h
            if not math.isfinite(item(y_new.sum())):
                raise NonFiniteError(f"{what}: the state became NaN or Inf in the step from t = {t} "
                                     f"with h = {h}; try a smaller dt0 or check the vector field.", t=t)

        if accept:
            nonfinite = 0
            stats["naccept"] += 1
            t_new = next_stop if landing else t + h
            if on_step is not None:
                on_step(t, t_new, h, B, y_new)
            B[0] = y_new
            abs_y_m, abs_new_m = abs_new_m, abs_y_m
            if last is not None:
                B[1] = B[s]  # FSAL: k_s = f(t_n+1, y_n+1) is the next step's k_1
            else:
                k1_valid = False
            t = t_new
            if landing:
                stop_index += 1
                if stop_index == len(stops):
                    return B[0].copy(), stats
                if on_tstop is not None and on_tstop(t, B[0]):
                    k1_valid = False  # a jump in y: the FSAL stage no longer matches
                    xp.abs(B[0, :m], out=abs_y_m)
        else:
            stats["nreject"] += 1

        if abs(h_next) > span:
            h_next = direction * span
        if tableau.adaptive and abs(h_next) <= 4 * math.ulp(max(abs(t), abs(t0), abs(t1))):
            if not math.isfinite(eest):
                raise NonFiniteError(_diagnose_nonfinite(xp, B, stage_rows, tableau, t, h, what,
                                                         nonfinite), t=t)
            raise StepSizeUnderflow(
                f"{what}: the step size underflowed to {h_next:.3e} at t = {t} (last error ratio "
                f"{eest:.3e}). The problem may be stiff, or the solution may be blowing up. Try looser "
                "rtol/atol, float64, or a model with smoother dynamics.", t=t)
        if stats["naccept"] + stats["nreject"] >= max_steps:
            raise MaxStepsExceeded(
                f"{what}: reached max_steps = {max_steps} step attempts ({stats['naccept']} accepted, "
                f"{stats['nreject']} rejected) at t = {t} of [{t0}, {t1}]. Increase max_steps, loosen "
                "rtol/atol, or check whether the dynamics have become stiff.", t=t)
        h = h_next


def _store(k, t, shape, dtype, out):
    """``out[...] = k`` after checking that f returned the state's shape and dtype."""
    if getattr(k, "shape", None) != shape or k.dtype != dtype:
        if getattr(k, "shape", None) != shape:
            raise ShapeError(f"the vector field returned shape {getattr(k, 'shape', type(k).__name__)} "
                             f"near t = {t}, but the state has shape {shape}; f must return dy/dt with "
                             "y's shape.")
        raise DTypeError(f"the vector field returned dtype {k.dtype} near t = {t} for a {dtype} state; "
                         "return the state's dtype (tinynode never promotes silently).")
    out[...] = k


def _flat_tolerance(xp, tol, shape, dtype):
    """A scalar tolerance as a float; an array one broadcast to the state and flattened."""
    if isinstance(tol, float) or np.ndim(tol) == 0:
        return float(tol)
    return xp.ascontiguousarray(xp.broadcast_to(xp.asarray(tol, dtype=dtype), shape)).reshape(-1)


def _diagnose_nonfinite(xp, B, stage_rows, tableau, t, h, what, tries):
    """Say whether f produced the NaN/Inf from a finite state, or the state itself blew up."""
    s = tableau.stages
    for i in range(s):
        y_i = B[0] if i == 0 else xp.matmul(stage_rows[i], B[: i + 1])
        y_ok = math.isfinite(item(y_i.sum()))
        k_ok = math.isfinite(item(B[i + 1].sum()))
        if not y_ok:
            return (f"{what}: the state became NaN or Inf inside the step from t = {t} (stage {i + 1}, "
                    f"h = {h:.3e}), after {tries} retries with smaller steps: the solution is "
                    "blowing up. Check the model's dynamics, or try tighter tolerances or float64.")
        if not k_ok:
            return (f"{what}: the vector field returned NaN or Inf at t = {t + float(tableau.c[i]) * h} "
                    f"from a finite state (stage {i + 1}), after {tries} retries with smaller steps. "
                    "Check f for operations that produce NaN (log or sqrt of negatives, 0/0, overflow).")
    return f"{what}: the error estimate is NaN or Inf at t = {t} (h = {h:.3e}); check the tolerances."


def _check_span(tspan):
    try:
        t0, t1 = (float(x) for x in tspan)
    except (TypeError, ValueError):
        raise ArgumentError(f"tspan must be a pair of numbers (t0, t1), got {tspan!r}") from None
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ArgumentError(f"tspan must be finite, got ({t0}, {t1})")
    if t0 == t1:
        raise ArgumentError(f"tspan has zero length ({t0}, {t1}); t1 must differ from t0")
    return t0, t1


def _check_tolerance(name, tol):
    need = "positive" if name == "atol" else "non-negative"
    if isinstance(tol, (float, int)):  # the common case, without array calls
        if math.isfinite(tol) and (tol > 0 or (tol == 0 and name == "rtol")):
            return float(tol)
        arr = np.asarray(float(tol))
    else:
        arr = np.asarray(tol.get() if hasattr(tol, "get") else tol, dtype=np.float64)
        if arr.size and np.all(np.isfinite(arr)) and np.all(arr > 0 if name == "atol" else arr >= 0):
            return float(arr) if arr.ndim == 0 else tol
    hint = " (for a purely relative tolerance use a tiny atol such as 1e-12)" if name == "atol" else ""
    raise ArgumentError(f"{name} must be finite and {need}{hint}, got {tol!r}")


def _check_saveat(saveat, t0, t1, direction):
    times = np.atleast_1d(np.asarray(saveat, dtype=np.float64))
    if times.ndim != 1 or times.size == 0:
        raise ArgumentError("saveat must be a non-empty 1-D sequence of times")
    if times.size > 1 and np.any(direction * np.diff(times) < 0):
        raise ArgumentError("saveat must be ordered along the direction of integration")
    if direction * (times[0] - t0) < 0 or direction * (times[-1] - t1) > 0:
        raise ArgumentError(f"saveat times must lie within tspan ({t0}, {t1})")
    return times.tolist()


def solve(f, y0, tspan, params=None, *, solver=None, rtol=1e-3, atol=1e-6, saveat=None,
          save_start=True, dense=False, dt0=None, max_steps=100_000, controller=None):
    """Solve ``dy/dt = f(t, y, params)``, ``y(t0) = y0``, over ``tspan = (t0, t1)``.

    Arguments:
        f: the vector field, ``f(t, y, params) -> dy/dt`` with ``y``'s shape and dtype.
        y0: the initial state, any shape, float32 or float64, NumPy or CuPy. The
            whole array is ONE system with one step sequence (a batch of 128
            20-vectors is a 2560-dimensional ODE, as in the tutorial).
        tspan: ``(t0, t1)``; ``t1 < t0`` integrates backward in time.
        params: passed through to ``f``.
        solver: a tableau, ``tinynode.Tsit5()`` by default; also ``Dopri5()``,
            and the fixed-step ``RK4()`` and ``Euler()`` (which need ``dt0``).
        rtol, atol: tolerances, scalars or arrays broadcastable to ``y0`` (per
            component). A step is accepted when the RMS over all entries of
            ``err / (atol + rtol max(|y_n|, |y_n+1|))`` is at most 1.
        saveat: times at which to return the state (within the span, ordered
            along the direction of integration). They do not constrain the
            steps: values come from the method's continuous extension, except
            ``t1``, which every solve lands on exactly. ``None`` returns the
            state after every accepted step.
        save_start: with ``saveat=None``, whether ``t0`` is the first output.
        dense: keep every step so that ``sol(t)`` works anywhere in the span.
        dt0: the first step size (magnitude); by default Hairer's heuristic.
        max_steps: the most step attempts (accepted plus rejected) allowed.
        controller: ``stepsize.PIController()`` (OrdinaryDiffEq's default),
            ``stepsize.IController()``, or ``stepsize.ConstantStepSize()``
            (keep ``dt0``; the fixed-step tableaus always do). Any object with
            ``init()``, ``adapt(h, eest, state) -> (accept, h_next, state)`` and a
            ``qmin`` (the shrink factor after a NaN/Inf step) is a controller.

    Returns:
        a :class:`Solution`. Failures raise a :class:`~tinynode.errors.SolverError`
        (``MaxStepsExceeded``, ``StepSizeUnderflow``, ``NonFiniteError``) whose
        message names the time reached and what to try.
    """
    tableau = tableaus.TSIT5 if solver is None else solver
    if not isinstance(tableau, tableaus.Tableau):
        raise TypeError(f"solver must be a tableau such as tinynode.Tsit5(), got {solver!r}")
    if not hasattr(y0, "dtype") or y0.dtype.kind != "f" or y0.dtype.itemsize not in (4, 8):
        raise DTypeError(f"y0 must be a float32 or float64 array, got {getattr(y0, 'dtype', type(y0).__name__)}; "
                         "cast it first, e.g. y0.astype(numpy.float32).")
    if y0.size == 0:
        raise ShapeError("y0 is empty")
    t0, t1 = _check_span(tspan)
    rtol, atol = _check_tolerance("rtol", rtol), _check_tolerance("atol", atol)
    if int(max_steps) < 1:
        raise ArgumentError(f"max_steps must be a positive integer, got {max_steps}")
    if dt0 is not None and not (math.isfinite(float(dt0)) and float(dt0) != 0):
        raise ArgumentError(f"dt0 must be a non-zero finite number, got {dt0}")
    xp = array_module(y0)
    direction = 1.0 if t1 > t0 else -1.0
    shape, dtype = y0.shape, y0.dtype
    y_flat = xp.ascontiguousarray(y0).reshape(-1)

    if saveat is not None:
        times = _check_saveat(saveat, t0, t1, direction)
        out = xp.empty((len(times), y_flat.size), dtype=dtype)
        pending = [0]
        while pending[0] < len(times) and times[pending[0]] == t0:
            out[pending[0]] = y_flat
            pending[0] += 1
    else:
        saved_t, saved_y = ([t0], [y_flat.copy()]) if save_start else ([], [])
    dense_out = DenseOutput(tableau, shape, t0, t1) if dense else None

    def on_step(t, t_new, h, B, y_new):
        if dense_out is not None:
            dense_out.append(t, h, B)
        if saveat is None:
            saved_t.append(t_new)
            saved_y.append(y_new.copy())
            return
        while pending[0] < len(times) and direction * (times[pending[0]] - t_new) <= 0:
            tau = times[pending[0]]
            if tau == t_new or tau == t1:
                out[pending[0]] = y_new
            else:
                _combine(tableau, B, h, (tau - t) / h, out=out[pending[0]])
            pending[0] += 1

    _, stats = integrate(f, y_flat, t0, t1, params, tableau=tableau, controller=controller,
                         rtol=rtol, atol=atol, dt0=dt0, max_steps=int(max_steps), shape=shape,
                         on_step=on_step)
    if saveat is None:
        saved_t[-1] = t1  # the last step lands on t1 exactly; make the float exact too
        t_out, y_out = np.asarray(saved_t), xp.stack(saved_y)
    else:
        t_out, y_out = np.asarray(times), out
    return Solution(t_out, y_out.reshape((len(t_out),) + shape), stats, "success", dense_out)
