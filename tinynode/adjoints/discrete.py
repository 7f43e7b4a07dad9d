"""DiscreteAdjoint: the exact gradient of what the solver computed.

With the accepted step sizes frozen (as every peer does: diffrax stops
gradients through the controller, SciML strips them from the error norm), the
forward solve is a fixed composition of Runge-Kutta steps, and its reverse
sweep is mechanical (docs/adjoints.md, DiscreteAdjoint). For one step from y_n with size h::

    Y_i = y_n + h sum_{j<i} a_ij k_j,   k_i = f(t_n + c_i h, Y_i),   y_n+1 = y_n + h sum_i b_i k_i

given ybar = dL/dy_n+1:

    kbar_i = h b_i ybar                       (all stages)
    for i = s..1:   Ybar_i, pbar_i = vjp(Y_i, kbar_i);  params_bar += pbar_i
                    kbar_j += h a_ij Ybar_i  (j < i)
    dL/dy_n = ybar + sum_i Ybar_i             (every Y_i contains y_n with identity Jacobian)

An output inside a step (saveat, from the continuous extension
``y_n + h sum_i b_i(theta) k_i``) seeds ``kbar_i += h b_i(theta) gbar`` and
``dL/dy_n += gbar``. A loss that weighs the solver's own error estimates,
``w sum_n EEst_n |h_n|`` (``pullback(gy, local_error=w)``), seeds the stages
through ``err = h sum_i e_i k_i`` (:func:`local_error_seeds`). The forward pass keeps ``B = [y_n, k_1..k_s]`` of every
accepted step, so each ``Y_i`` is rebuilt with one product and the sweep
costs one VJP per stage and no evaluation of f; where the memory budget
allows it also keeps each stage's hidden activations, and the VJP then skips
its forward pass; where it does not, a step keeps only ``y_n`` and is re-taken
before its sweep (:mod:`tinynode.adjoints.steprecord`). Rejected steps play no
part. This is ReverseDiffAdjoint's counterpart: it matches finite differences
of the same discrete computation to rounding.

It is what ``solve_with_vjp`` and ``NeuralODE`` use when no ``sensealg`` is
given: on every problem size measured it made the fewest evaluations of f and
VJPs for a gradient (docs/adjoints.md, "Which method").
"""

import math
import os
from dataclasses import dataclass

import numpy as np

from ..backend import array_module, is_cupy, item
from ..errors import NonFiniteError
from ..step import rk_step
from .common import SensitivityAlgorithm
from .steprecord import StepRecord


def default_memory(xp_array):
    """The default budget: a quarter of the machine's memory (of the GPU's, for CuPy arrays)."""
    if is_cupy(xp_array):
        import cupy

        return cupy.cuda.runtime.memGetInfo()[1] // 4
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): 4 GiB
        return 4 * 2**30


@dataclass(frozen=True)
class DiscreteAdjoint(SensitivityAlgorithm):
    """Reverse pass through the accepted steps (exact gradient of the discrete solution).

    It solves nothing backward, so ``rtol`` and ``atol`` (the base's options) are not used.

    Arguments:
        memory: the most bytes the forward pass keeps for the sweep (default: a
            quarter of the machine's memory); steps keep less once it is reached
            (:mod:`tinynode.adjoints.steprecord`), and if even one state per step
            does not fit, the forward pass raises ``MemoryBudgetExceeded``.
    """

    memory: int = None

    def __post_init__(self):
        super().__post_init__()
        self.check_positive("memory", "give a positive number of bytes, or None for a quarter of the machine's memory")

    @property
    def needs_dense(self):
        """False: the method keeps its own per-step record (:meth:`step_record`)."""
        return False

    differentiates_local_error = True

    def step_record(self, bound, y0):
        """The forward pass's field and record of its accepted steps, within the budget."""
        return StepRecord(bound, default_memory(y0) if self.memory is None else self.memory)

    def kept(self, fwd):
        """How many forward steps kept their activations, their stages, or only their start state."""
        return fwd.steps.counts()

    def backward(self, fwd, obs, stats):
        """The reverse sweep of the accepted steps, last to first (the module docstring)."""
        xp = array_module(fwd.y0)
        record = fwd.steps
        gp = xp.zeros(fwd.n_params, dtype=fwd.y0.dtype)
        outputs = _outputs_by_step(fwd, obs)
        ybar = obs.at_t1.copy()
        for k in range(len(record.ts) - 1, -1, -1):
            t_end = fwd.t1 if k == len(record.ts) - 1 else record.ts[k + 1]
            B = _stages(fwd, record, k, stats)
            ybar = _reverse_step(fwd, record.ts[k], record.hs[k], B, record.kept[k], t_end, ybar,
                                 outputs.get(k, []), gp, stats, obs.local_error)  # fmt: skip
            stats["naccept"] += 1
        if not math.isfinite(item(ybar.sum() + gp.sum())):  # nothing adaptive would have noticed
            raise NonFiniteError(
                f"backward pass ({self.name}): the gradient contains NaN or Inf although the forward pass was "
                "finite: the vector field's VJP produced them. Check f's derivative (tinynode.testing.gradcheck)."
            )
        return ybar, gp


def _stages(fwd, record, k, stats):
    """Step k's table ``[y_n, k_1..k_s]``: as kept, or re-taken from ``y_n`` with the same ``h``."""
    table = record.tables[k]
    if table.ndim == 2:
        return table
    xp, tab = array_module(table), fwd.tableau
    work = xp.empty((tab.stages + 3, table.size), dtype=table.dtype)
    B, y_new, stage = work[: tab.stages + 1], work[tab.stages + 1], work[tab.stages + 2]
    B[0] = table
    fwd.bound.into(record.ts[k], B[0], B[1])
    rk_step(fwd.bound, tab, record.ts[k], record.hs[k], B, y_new, stage)
    stats["nf_resolve"] += tab.stages
    return B


def _outputs_by_step(fwd, obs):
    """``{step k: [(t, dL/dy(t)), ...]}`` for the outputs inside (t_k, t_k+1]; t1 belongs to the last step."""
    direction = 1.0 if fwd.t1 > fwd.t0 else -1.0
    starts = [direction * t for t in fwd.steps.ts]
    by_step = {}
    for t, g in obs.jumps.items():
        k = int(np.searchsorted(starts, direction * t, side="left")) - 1
        by_step.setdefault(k, []).append((t, g))
    return by_step


def local_error_seeds(fwd, B, W, h):
    """``(d/dk_i, d/dy_n)`` of ``EEst |h|`` for one step ``B = [y_n, k_1..k_s]`` with weights ``W``.

    ``EEst = RMS(q)`` with ``q = err / sc``, ``err = h sum_i e_i k_i`` and
    ``sc = atol + rtol max(|y_n|, |y_n+1|)`` (:mod:`tinynode.norms`); the step
    size is held fixed, as everywhere in the sweep. With ``g = d(EEst |h|)/dq``::

        errbar = g / sc,   scbar = -g q / sc,   then scbar goes to y_n or to y_n+1 (whichever
        is larger in size, times rtol sign), and y_n+1 = y_n + h sum_i b_i k_i.
    """
    xp = array_module(B)
    s, y_n = fwd.tableau.stages, B[0]
    err, y_new = xp.dot(W[s + 1], B), xp.dot(W[s], B)
    n_bigger = xp.abs(y_n) >= xp.abs(y_new)
    rtol, atol = (xp.asarray(tol, dtype=B.dtype) for tol in (fwd.rtol, fwd.atol))
    sc = xp.where(n_bigger, xp.abs(y_n), xp.abs(y_new)) * rtol + atol
    q = err / sc
    eest = math.sqrt(item(xp.dot(q, q)) / q.size)
    if eest == 0.0:
        return xp.zeros_like(B[1:]), xp.zeros_like(y_n)
    g = q * (abs(h) / (q.size * eest))
    scbar = -g * q / sc * rtol
    ybar_n = xp.where(n_bigger, scbar * xp.sign(y_n), 0)
    ybar_new = xp.where(n_bigger, 0, scbar * xp.sign(y_new))
    kbar = W[s + 1, 1:, None] * (g / sc)[None, :] + W[s, 1:, None] * ybar_new[None, :]
    return kbar, ybar_n + ybar_new


def _reverse_step(fwd, t_n, h, B, kept, t_end, ybar, outputs, gp, stats, local_error=0.0):
    """dL/dy_n from dL/dy_n+1 for one step ``B = [y_n, k_1..k_s]`` (the module docstring's sweep);
    ``kept``: each stage's activations from the forward pass, or None; ``local_error``: the weight
    of this step's ``EEst |h|`` in the loss."""
    xp, tab, dtype = array_module(B), fwd.tableau, B.dtype
    s = tab.stages
    b = tab.b
    carries = b != 0  # the stages whose kbar is nonzero: y_n+1 uses k_i (more below)
    seeds = []
    for t, g in outputs:
        if t == t_end:
            ybar = ybar + g
        else:
            seeds.append((tab.interp_weights((t - t_n) / h), g))
    kbar = xp.asarray(h * b, dtype=dtype)[:, None] * ybar[None, :]  # kbar_i = h b_i ybar
    ybar_n = ybar.copy()
    for w, g in seeds:  # an output inside the step: kbar_i += h b_i(theta) gbar
        kbar += xp.asarray(h * w, dtype=dtype)[:, None] * g[None, :]
        ybar_n += g
        carries = carries | (w != 0)  # ... an output inside the step uses k_i
    W = tab.step_weights(h, xp, dtype)
    if local_error and tab.adaptive:  # ... and so does a loss on the step's error estimate
        kbar_e, ybar_e = local_error_seeds(fwd, B, W, h)
        kbar += local_error * kbar_e
        ybar_n += local_error * ybar_e
        carries = carries | (tab.btilde != 0) | (tab.b != 0)
    for i in range(s - 1, -1, -1):
        if not carries[i]:
            continue  # nothing uses k_i: e.g. Tsit5's k_7 when nothing looks inside the step
        y_i = xp.dot(W[i, : i + 1], B[: i + 1])  # Y_i = y_n + h sum_j a_ij k_j
        t_i, need_params = t_n + tab.c[i] * h, gp.size > 0
        if kept is None:
            ybar_i, pbar_i = fwd.bound.vjp(t_i, y_i, kbar[i], need_params=need_params)
        else:  # the forward pass's activations at this stage: no forward pass again
            ybar_i, pbar_i = fwd.bound.vjp_kept(t_i, y_i, B[i + 1], kept[i], kbar[i], need_params=need_params)
        stats["nvjp"] += 1
        if gp.size:
            gp += pbar_i
        ybar_n += ybar_i
        if i:
            kbar[:i] += W[i, 1 : i + 1, None] * ybar_i[None, :]  # kbar_j += h a_ij Ybar_i
            carries[:i] |= tab.a[i, :i] != 0  # ... or a stage that carries one uses k_j (Dopri5's k_2: b_2 = 0)
    return ybar_n
