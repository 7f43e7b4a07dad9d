"""The adaptive loop: step, measure the error, accept or reject, repeat until t1.

This is all of an adaptive ODE solver apart from the step itself
(:func:`tinynode.step.rk_step`), the error norm (:mod:`tinynode.norms`) and
the controller (:mod:`tinynode.controllers`)::

    k_1 = f(t0, y0);  h = dt0 or Hairer's initial step
    until t reaches t1:
        shorten h to land exactly on the next stop time (t1 included)
        err = step(t, h)                    # y_n+1 and the error estimate
        EEst = ||err|| scaled by the tolerances
        accept?, h_next = controller(h, EEst)
        if accepted: t, y = t + h, y_n+1;  k_1 = k_s (FSAL);  record the step
        h = h_next

Everything a caller wants to do with the steps happens in two callbacks:
``on_step`` after each accepted step (saving outputs, recording dense output,
an adjoint's quadrature) and ``on_tstop`` on landing at a stop time (an
adjoint's jump). Time and step size are Python floats (float64); the state
keeps its own dtype. Failures raise a :class:`~tinynode.errors.SolverError`
that says what to try.
"""

import math

from .backend import array_module, item
from .controllers import initial_step
from .errors import MaxStepsExceeded, NonFiniteError, StepSizeUnderflow
from .step import rk_step

__all__ = ["integrate"]

#: How many times a step that produced NaN/Inf is retried with a smaller step before giving up.
MAX_NONFINITE_RETRIES = 10


def integrate(
    field, y0, tspan, *, solver, controller, norm, dt0=None, max_steps=100_000, tstops=(), on_step=None, on_tstop=None
):
    """Integrate the bound ``field`` (:mod:`tinynode.protocol`) from the flat ``y0`` over ``tspan``.

    Arguments:
        field: a :class:`~tinynode.protocol.BoundField`; ``y0``: a flat array.
        tspan: ``(t0, t1)`` as floats; ``t1 < t0`` goes backward.
        solver, controller, norm: the tableau, the step-size controller and the
            :class:`~tinynode.norms.ErrorNorm`.
        dt0: the first step size (magnitude); Hairer's heuristic when None.
        tstops: times the steps must land on exactly, besides t1.
        on_step(t, t_new, h, B, y_new): after each accepted step from ``t`` to
            ``t_new``, with the step's table ``B = [y_n, k_1..k_s]`` (reused:
            copy what you keep).
        on_tstop(t, y) -> bool: on landing at each tstop before t1, with the flat
            state; return True after changing ``y`` (a jump), so k_1 is re-evaluated.

    Returns ``(y(t1) flat, stats)``, ``stats`` counting evaluations ``nf`` and
    accepted and rejected steps, and ``local_error``: the sum over accepted steps
    of ``EEst |h|`` (an adaptive method's error estimates, weighted by their steps;
    Pal et al. 2021 regularise it: :mod:`tinynode.regularizers`).
    """
    t0, t1 = tspan
    xp, s = array_module(y0), solver.stages
    direction = 1.0 if t1 > t0 else -1.0
    stops = _stop_times(tstops, t0, t1)
    work = xp.empty((s + 3, y0.size), dtype=y0.dtype)  # one allocation for all the solve's state rows:
    B, y_new, stage = work[: s + 1], work[s + 1], work[s + 2]  # the step's table [y_n, k_1..k_s], y_n+1, Y_i
    B[0] = y0
    field.into(t0, B[0], B[1])
    _check_start(B, t0)
    stats = {"nf": 1, "naccept": 0, "nreject": 0, "local_error": 0.0}
    if dt0 is None:
        h, nf = initial_step(field, t0, B[0], B[1], norm, solver.order, t1 - t0)
        stats["nf"] += nf
    else:
        h = direction * min(abs(dt0), abs(t1 - t0))
    t, state, k1_known, failures = t0, controller.init(solver), True, 0
    while True:
        landing = direction * (t + h - stops[0]) >= -100 * math.ulp(max(abs(t), abs(stops[0])))
        if landing:
            h = stops[0] - t  # land exactly on the next stop rather than step past it
        if not k1_known:
            field.into(t, B[0], B[1])
            stats["nf"] += 1
        err = rk_step(field, solver, t, h, B, y_new, stage)
        stats["nf"] += s - 1
        eest = norm(err, B[0], y_new) if solver.adaptive else _finite_or_nan(y_new)
        if math.isfinite(eest):
            accept, h_next, state = controller.adapt(h, eest, state)
        else:  # NaN/Inf somewhere in the step: retry smaller, and give up with a diagnosis
            failures += 1
            if failures > MAX_NONFINITE_RETRIES or not solver.adaptive:
                raise NonFiniteError(_diagnose_nonfinite(solver, B, t, h, failures), t=t)
            accept, h_next = False, h * controller.qmin
        if accept:
            stats["naccept"] += 1
            stats["local_error"] += eest * abs(h)
            failures = 0
            t_new = stops[0] if landing else t + h
            if on_step is not None:
                on_step(t, t_new, h, B, y_new)
            B[0] = y_new
            if solver.fsal:
                B[1] = B[s]  # FSAL: k_s = f(t_n+1, y_n+1) is the next step's k_1
            k1_known, t = solver.fsal, t_new
            if landing:
                stops.pop(0)
                if not stops:
                    return B[0].copy(), stats
                if on_tstop is not None and on_tstop(t, B[0]):
                    k1_known = False  # y jumped: the FSAL stage no longer matches
        else:
            stats["nreject"] += 1
        h_next = direction * min(abs(h_next), abs(t1 - t0))
        _check_progress(solver, B, h, h_next, t, tspan, eest, failures, stats, max_steps)
        h = h_next


def _stop_times(tstops, t0, t1):
    """The times strictly inside the span in the order they are reached, then t1."""
    direction = 1.0 if t1 > t0 else -1.0
    inside = {float(x) for x in tstops if direction * (x - t0) > 0 > direction * (x - t1)}
    return sorted(inside, key=lambda x: direction * x) + [float(t1)]


def _finite_or_nan(y):
    """0.0 when ``y`` is finite, NaN otherwise (a fixed-step method's only check: one sync)."""
    return 0.0 if math.isfinite(item(y.sum())) else math.nan


def _check_start(B, t0):
    if not math.isfinite(item(B[:2].sum())):  # one sync checks both y0 and f(t0, y0)
        which = "y0" if not math.isfinite(item(B[0].sum())) else "f(t0, y0)"
        raise NonFiniteError(
            f"{which} contains NaN or Inf at t0 = {t0}; the solve cannot start "
            "(check the initial state, the model and its inputs).",
            t=t0,
        )


def _check_progress(solver, B, h, h_next, t, tspan, eest, failures, stats, max_steps):
    """Raise if the next step would be too small to move t (naming the cause), or max_steps is spent."""
    if solver.adaptive and abs(h_next) <= 4 * math.ulp(max(abs(t), abs(tspan[0]), abs(tspan[1]))):
        if not math.isfinite(eest):
            raise NonFiniteError(_diagnose_nonfinite(solver, B, t, h, failures), t=t)
        raise StepSizeUnderflow(
            f"the step size underflowed to {h_next:.3e} at t = {t} (last error ratio {eest:.3e}). The problem "
            "may be stiff, or the solution may be blowing up. Try looser rtol/atol, float64, or a model "
            "with smoother dynamics.",
            t=t,
        )
    if stats["naccept"] + stats["nreject"] >= max_steps:
        raise MaxStepsExceeded(
            f"reached max_steps = {max_steps} step attempts ({stats['naccept']} accepted, {stats['nreject']} "
            f"rejected) at t = {t} of [{tspan[0]}, {tspan[1]}]. Increase max_steps, loosen rtol/atol, or "
            "check whether the dynamics have become stiff.",
            t=t,
        )


def _diagnose_nonfinite(solver, B, t, h, tries):
    """Say whether f produced the NaN/Inf from a finite state, or the state itself blew up."""
    xp = array_module(B)
    W = solver.step_weights(h, xp, B.dtype)
    for i in range(solver.stages):
        y_ok = math.isfinite(item(xp.dot(W[i, : i + 1], B[: i + 1]).sum()))
        if not y_ok:
            return (
                f"the state became NaN or Inf inside the step from t = {t} (stage {i + 1}, h = {h:.3e}), "
                f"after {tries} tries with smaller steps: the solution is blowing up. Check the model's "
                "dynamics, or try tighter tolerances, a smaller dt0 or float64."
            )
        if not math.isfinite(item(B[i + 1].sum())):
            return (
                f"the vector field returned NaN or Inf at t = {t + float(solver.c[i]) * h} from a finite "
                f"state (stage {i + 1}), after {tries} tries with smaller steps. Check f for operations "
                "that produce NaN (log or sqrt of negatives, 0/0, overflow)."
            )
    return (
        f"the error estimate is NaN or Inf at t = {t} (h = {h:.3e}) from a finite step, after {tries} tries "
        "with smaller steps; check the tolerances (atol must be positive)."
    )
