"""Gradients through the solver: ``solve_with_vjp`` and the sensitivity algorithms.

    sol, pullback = solve_with_vjp(field, y0, tspan, params, sensealg=InterpolatingAdjoint(), saveat=...)
    gy0, gparams, stats = pullback(dL_dsol_y)
    grads = pullback(dL_dsol_y); grads.t0, grads.t1, grads.t      # dL/dt0, dL/dt1, dL/dsol.t (times.py)

Every method is a :class:`SensitivityAlgorithm` (``common.py``: the shared
options, the common start of a pullback, the backward solve), and each
continuous adjoint's augmented right-hand side is a bound field of its own
(:mod:`tinynode.protocol`), integrated by the same loop as the forward pass.

``dL_dsol_y`` has the shape of ``sol.y``: a loss may look at any of the saved
times. The algorithms (one small module each):

=======================  ==========================================  ======================
sensealg                 what runs backward                          memory
=======================  ==========================================  ======================
InterpolatingAdjoint     lambda, mu; y interpolated from the forward  every step (or checkpoints)
GaussAdjoint             lambda; mu by Gauss-Legendre per step        every step (or checkpoints)
BacksolveAdjoint         lambda, y, mu                                outputs only
DiscreteAdjoint          exact reverse sweep of the accepted steps    every step
=======================  ==========================================  ======================

The continuous adjoints approximate the gradient of the exact ODE solution
(to the backward tolerances); the discrete one is the exact gradient of the
computed solution. They agree to within what the tolerances allow.
"""

from ..errors import ArgumentError
from ..odeint import DEFAULTS, check_span, check_state, solve
from ..protocol import bind
from ..threads import auto_blas_threads
from .backsolve import BacksolveAdjoint
from .common import STATS_KEYS, Forward, SensitivityAlgorithm
from .discrete import DiscreteAdjoint
from .gauss import GaussAdjoint
from .interpolating import InterpolatingAdjoint
from .times import Gradients

__all__ = [
    "solve_with_vjp",
    "SensitivityAlgorithm",
    "InterpolatingAdjoint",
    "GaussAdjoint",
    "BacksolveAdjoint",
    "DiscreteAdjoint",
    "Gradients",
    "SENSEALGS",
    "STATS_KEYS",
]

#: Command-line names of the algorithms.
SENSEALGS = {
    "interpolating": InterpolatingAdjoint,
    "gauss": GaussAdjoint,
    "backsolve": BacksolveAdjoint,
    "discrete": DiscreteAdjoint,
}


def solve_with_vjp(
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
    sensealg=None,
):
    """Solve like :func:`tinynode.solve`, and return a pullback for gradients.

    Arguments:
        f: a vector field with a VJP (:mod:`tinynode.protocol`): ``f(t, y, params)``
            and ``f.vjp(t, y, params, v) -> (v^T df/dy, v^T df/dparams)``;
            ``tinynode.VectorField(layer)`` makes one from any layer.
        solver, controller, rtol, atol, dt0, max_steps, saveat, save_start: as
            for :func:`tinynode.solve`; the backward solve uses the same solver,
            controller, ``dt0`` and tolerances (unless the sensealg names its own).
        sensealg: ``DiscreteAdjoint()`` by default (the fewest evaluations and VJPs
            on every size measured; docs/adjoints.md, "Which method"),
            ``InterpolatingAdjoint()`` (the tutorial's), ``GaussAdjoint()`` or
            ``BacksolveAdjoint()`` (keeps nothing per step).

    Returns:
        ``(sol, pullback)``; ``pullback(gy) -> (gy0, gparams, stats)`` maps the
        cotangent of ``sol.y`` to those of ``y0`` and ``params``. What it returns
        (a :class:`~tinynode.adjoints.times.Gradients`) also gives the gradients
        with respect to the times on request: ``.t0``, ``.t1`` and ``.t`` (one
        per output time ``sol.t[k]``), for every sensealg. ``pullback(gy,
        local_error=w)`` adds ``w * sol.stats["local_error"]`` (the solver's
        error estimates, :mod:`tinynode.regularizers`) to the loss it
        differentiates; DiscreteAdjoint only. ``stats`` has
        the counters :data:`STATS_KEYS` for every method (zero where unused) and
        ``"choices"``: the ``sensealg``, ``controller`` and ``blas_threads`` used,
        and for DiscreteAdjoint what the steps ``kept`` (how many kept their
        activations, their stages, or only their start state). A pullback may
        be called more than once.
    """
    sensealg = DiscreteAdjoint() if sensealg is None else sensealg
    if not isinstance(sensealg, SensitivityAlgorithm):
        raise ArgumentError(
            f"sensealg must be one of {', '.join(c.__name__ for c in SENSEALGS.values())}() "
            f"(a SensitivityAlgorithm); got {sensealg!r}"
        )
    if not hasattr(f, "vjp"):
        raise ArgumentError(
            f"{f!r} is not a vector field with a VJP: it needs a vjp(t, y, params, v) method "
            "(wrap a layer with tinynode.VectorField(layer))"
        )
    check_state(y0)
    tspan = check_span(tspan)  # (a generator could be read once only)
    bound = bind(f, params, y0.shape, y0.dtype)  # one binding for the forward and the backward pass
    options = dict(solver=solver, controller=controller, rtol=rtol, atol=atol, dt0=dt0, max_steps=max_steps)
    record = sensealg.step_record(bound, y0)
    on_step = None if record is None else record.on_step
    sol = solve(bound if record is None else record, y0, tspan, params, **options, saveat=saveat,
                save_start=save_start, dense=sensealg.needs_dense, on_step=on_step)  # fmt: skip
    fwd = Forward.record(f, bound, params, y0, tspan, sol, **options, steps=record)

    def pullback(gy, *, local_error=0.0):
        with auto_blas_threads(bound) as threads:
            grads = sensealg.pullback(fwd, gy, local_error)
        choices = {"sensealg": sensealg.name, "controller": type(fwd.controller).__name__, "blas_threads": threads}
        kept = sensealg.kept(fwd)
        grads.stats["choices"] = choices if kept is None else {**choices, "kept": kept}
        return grads

    return sol, pullback
