"""Gradients through the solver: ``solve_with_vjp`` and the sensitivity algorithms.

    sol, pullback = solve_with_vjp(field, y0, tspan, params, sensealg=InterpolatingAdjoint(), saveat=...)
    gy0, gparams, stats = pullback(dL_dsol_y)

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

from ..backend import array_module
from ..odeint import solve
from .backsolve import BacksolveAdjoint
from .common import Forward
from .discrete import DiscreteAdjoint
from .gauss import GaussAdjoint
from .interpolating import InterpolatingAdjoint

__all__ = ["solve_with_vjp", "InterpolatingAdjoint", "GaussAdjoint", "BacksolveAdjoint", "DiscreteAdjoint",
           "SENSEALGS"]

#: Command-line names of the algorithms.
SENSEALGS = {"interpolating": InterpolatingAdjoint, "gauss": GaussAdjoint,
             "backsolve": BacksolveAdjoint, "discrete": DiscreteAdjoint}


def solve_with_vjp(field, y0, tspan, params=None, *, sensealg=None, saveat=None, save_start=True,
                   rtol=1e-3, atol=1e-6, solver=None, dt0=None, max_steps=100_000, controller=None):
    """Solve like :func:`tinynode.solve`, and return a pullback for gradients.

    Arguments:
        field: a vector field: ``field(t, y, params)`` and
            ``field.vjp(t, y, params, v) -> (v^T df/dy, v^T df/dparams)``;
            ``tinynode.VectorField(layer)`` makes one from any layer.
        sensealg: ``InterpolatingAdjoint()`` (default), ``GaussAdjoint()``,
            ``BacksolveAdjoint()`` or ``DiscreteAdjoint()``.
        the rest: as for :func:`tinynode.solve`; the backward solve uses the same
            solver, controller, ``dt0`` and tolerances (unless the sensealg names its own).

    Returns:
        ``(sol, pullback)``; ``pullback(gy) -> (gy0, gparams, stats)`` maps the
        cotangent of ``sol.y`` to those of ``y0`` and ``params``. ``stats``
        counts the backward pass's VJPs (``nvjp``), evaluations of f (``nf``;
        ``nf_resolve`` for checkpoint re-solves) and steps. A pullback may be
        called more than once.
    """
    sensealg = InterpolatingAdjoint() if sensealg is None else sensealg
    if not hasattr(sensealg, "pullback"):
        raise TypeError(f"sensealg must be one of {', '.join(c.__name__ for c in SENSEALGS.values())}; "
                        f"got {sensealg!r}")
    if not hasattr(field, "vjp"):
        raise TypeError(f"{field!r} is not a vector field: it needs a vjp(t, y, params, v) method "
                        "(wrap a layer with tinynode.VectorField(layer))")
    sol = solve(field, y0, tspan, params, solver=solver, rtol=rtol, atol=atol, saveat=saveat,
                save_start=save_start, dense=sensealg.needs_dense, dt0=dt0, max_steps=max_steps,
                controller=controller)
    xp = array_module(y0)
    fwd = Forward(field=field, params=params, y0=xp.ascontiguousarray(y0).reshape(-1), shape=y0.shape,
                  t0=float(tspan[0]), t1=float(tspan[1]), times=[float(t) for t in sol.t],
                  y_out=sol.y.reshape(len(sol.t), -1), tableau=sol.dense.tableau if sol.dense else
                  (solver if solver is not None else _default_tableau()),
                  rtol=_scalar(rtol), atol=_scalar(atol), max_steps=max_steps, controller=controller,
                  dt0=dt0, dense=sol.dense)

    def pullback(gy):
        return sensealg.pullback(fwd, gy)

    return sol, pullback


def _default_tableau():
    from ..tableaus import TSIT5
    return TSIT5


def _scalar(tol):
    return float(tol) if isinstance(tol, (int, float)) else tol
