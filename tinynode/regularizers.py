"""Regularisers that train dynamics which are cheap to solve.

A Neural ODE costs what its solver's evaluations of ``f`` cost, and nothing
in the data loss stops training from making the dynamics harder to solve.
These terms, added to the loss of a :class:`~tinynode.NeuralODE` while it
trains (``NeuralODE(net, regularize=Regularization(...))``), push back; each
has a weight, and 0 turns it off:

==============  ======================================================  ===========================
term            what is added to the loss (times its weight)             gradient
==============  ======================================================  ===========================
kinetic         R_K = int mean_b |f(t, z_b)|^2 dt                         any sensealg
jacobian        R_J = int mean_b |eps_b^T df/dz (t, z_b)|^2 dt           any sensealg
error           R_E = sum over accepted steps of EEst_n |h_n|             DiscreteAdjoint
error_sampled   R_S = (t1 - t0) EEst(t_s), one step at a random t_s      any sensealg
steer           no term: the end time t1 is drawn from [t1 - b, t1 + b]  any sensealg
==============  ======================================================  ===========================

*Kinetic energy* and the *Jacobian's Frobenius norm* (Finlay et al. 2020, "How to
train your neural ODE") are integrated with the state as extra columns,
``d/dt [z, e_K, e_J] = [f, |f|^2, |eps^T J|^2]`` per row, by
:class:`RegularizedField`; ``|A|_F^2 = E |eps^T A|^2`` for noise with
``E[eps eps^T] = I`` (Hutchinson), and ``eps`` is drawn once per solve and held
fixed through it and its backward pass (redrawing it per evaluation makes the
integrand rough and the step count explode: torchdiffeq #120). Its gradient
needs the derivative of a VJP, which every layer writes by hand
(``backward_vjp``, :mod:`tinynode.layer`).

*The solver's error estimates* (Pal et al. 2021, "Opening the Blackbox") are
``sol.stats["local_error"]`` (:func:`tinynode.loop.integrate`), differentiated
through the steps by the discrete adjoint (``pullback(gy, local_error=w)``).
The *sampled* form (Pal, Edelman and Rackauckas 2023) needs one step only: at a
time ``t_s`` drawn uniformly from the span it takes one step of the mean
accepted size from ``y(t_s)`` and weighs its estimate by ``t1 - t0`` (an
unbiased estimate of ``int EEst dt``); ``y(t_s)`` is one more output of the
solve, so every sensealg gives its gradient.

*STEER* (Ghosh et al. 2020) trains on a randomly perturbed end time, so the
model cannot rely on exactly where the solve stops; prediction uses ``t1``.
"""

import math
import numbers
from dataclasses import dataclass, fields

import numpy as np

from .adjoints import DiscreteAdjoint, solve_with_vjp
from .backend import array_module, item
from .controllers import ConstantStepSize
from .errors import ArgumentError

__all__ = ["Regularization", "RegularizedField", "RegularizedTraining", "parse_regularization"]


@dataclass(frozen=True)
class Regularization:
    """The regularisers' weights (0: off), the STEER half-width ``steer`` and the noise's ``seed``.

    ``noise`` is ``"rademacher"`` (the default: the lowest-variance Hutchinson
    noise) or ``"gaussian"``.
    """

    kinetic: float = 0.0
    jacobian: float = 0.0
    error: float = 0.0
    error_sampled: float = 0.0
    steer: float = 0.0
    seed: int = 0
    noise: str = "rademacher"

    def __post_init__(self):
        for name in ("kinetic", "jacobian", "error", "error_sampled", "steer"):
            value = getattr(self, name)
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0:
                raise ArgumentError(f"Regularization({name}={value!r}): give a finite number >= 0 (0 turns it off)")
            object.__setattr__(self, name, float(value))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ArgumentError(f"Regularization(seed={self.seed!r}): give a non-negative integer")
        if self.noise not in ("rademacher", "gaussian"):
            raise ArgumentError(f"Regularization(noise={self.noise!r}): choose 'rademacher' or 'gaussian'")

    @property
    def integrals(self):
        """The terms integrated as extra state columns, in column order."""
        return tuple(name for name in ("kinetic", "jacobian") if getattr(self, name))

    @property
    def spec(self):
        """The weights as ``--regularize`` takes them, canonical (``"kinetic=0.01,steer=0.5"``; ``""``: none)."""
        return ",".join(f"{name}={getattr(self, name):g}" for name in self.active)

    @property
    def active(self):
        """The terms with a non-zero weight (STEER included)."""
        return tuple(f.name for f in fields(self)[:5] if getattr(self, f.name))

    def draw_noise(self, rng, shape, dtype, xp):
        """Hutchinson noise of ``shape``: ``E[eps eps^T] = I`` per row."""
        if self.noise == "gaussian":
            eps = rng.standard_normal(shape)
        else:
            eps = rng.integers(0, 2, size=shape) * 2.0 - 1.0
        return xp.asarray(eps, dtype=dtype)


def parse_regularization(text, seed=0):
    """``"kinetic=0.01,jacobian=0.01"`` (the CLI's ``--regularize``) as a :class:`Regularization`."""
    names = [f.name for f in fields(Regularization)[:5]]
    weights = {}
    for part in filter(None, (piece.strip() for piece in str(text).split(","))):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in names:
            raise ArgumentError(
                f"--regularize {text!r}: each item is NAME=WEIGHT with NAME one of {', '.join(names)} "
                "(e.g. --regularize kinetic=0.01,jacobian=0.01)"
            )
        if name.strip() in weights:
            raise ArgumentError(f"--regularize {text!r}: {name.strip()} is given twice; give each term once")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise ArgumentError(f"--regularize {text!r}: {value!r} is not a number (in {part!r})") from None
    try:
        return Regularization(**weights, seed=seed)
    except ArgumentError as e:
        raise ArgumentError(f"--regularize {text!r}: {e}") from None


class RegularizedField:
    """``[z, e] -> [f(z), |f(z)|^2, |eps^T df/dz|^2]`` per row: a layer's field with its integrals.

    The state has ``d + m`` columns (``m`` = 1 or 2 integrals, in
    ``regularization.integrals`` order); the integrands are per row (a row is
    one sample), and nothing depends on the extra columns. Its VJP, with
    cotangent ``[v, a, c]``, is one VJP of ``f`` with cotangent ``v + 2 a f``
    (the kinetic term's gradient), plus for the Jacobian term the VJP of the
    VJP ``u = eps^T J`` with cotangent ``2 c u`` (:meth:`tinynode.nn.Dense.backward_vjp`).
    """

    def __init__(self, layer, d, terms, noise=None, direction=1.0):
        if "jacobian" in terms and not hasattr(layer, "backward_vjp"):
            raise ArgumentError(
                f"the Jacobian regulariser needs the derivative of the dynamics' VJP, and {layer!r} has no "
                "backward_vjp (Dense, Chain, Flatten and Augment have one; a layer of your own can add it "
                "and check it with tinynode.testing.check_backward_vjp)"
            )
        self.layer, self.d, self.terms, self.noise = layer, d, tuple(terms), noise
        self.direction = direction  # -1 on a backward span: the integrals are over |dt|, never negative

    def _integrands(self, y, u):
        cols = {"kinetic": y, "jacobian": u}
        return [self.direction * (cols[name] * cols[name]).sum(axis=-1, keepdims=True) for name in self.terms]

    def __call__(self, t, state, params):
        """``[f(z), |f(z)|^2, |eps^T df/dz|^2]`` per row (the integrands of the terms that are on)."""
        z = state[..., : self.d]
        y, ctx = self.layer.forward(params, z)
        u = self.layer.backward(params, ctx, self.noise)[0] if "jacobian" in self.terms else None
        return array_module(y).concatenate([y, *self._integrands(y, u)], axis=-1)

    def vjp(self, t, state, params, v):
        """``(v^T dF/dstate, v^T dF/dparams)`` for ``F = [f, |f|^2, |eps^T J|^2]`` (the class docstring)."""
        xp, d = array_module(state), self.d
        cot = {name: self.direction * v[..., d + j : d + j + 1] for j, name in enumerate(self.terms)}
        z = state[..., :d]
        y, ctx = self.layer.forward(params, z)
        gy = v[..., :d] + 2 * cot["kinetic"] * y if "kinetic" in cot else v[..., :d]
        gz, gp = self.layer.backward(params, ctx, gy)
        if "jacobian" in cot:
            u = self.layer.backward(params, ctx, self.noise)[0]
            cz, cp, _ = self.layer.backward_vjp(params, ctx, self.noise, 2 * cot["jacobian"] * u)
            gz, gp = gz + cz, gp + cp
        return xp.concatenate([gz, xp.zeros_like(v[..., d:])], axis=-1), gp


class RegularizedTraining:
    """A NeuralODE's regularised forward and backward passes.

    ``forward`` solves ``[x, 0]`` with :class:`RegularizedField` when an integral
    is on (else the plain field), to a STEER-drawn end time when ``steer`` is on,
    with one more output at the sampled time for ``error_sampled``; it returns a
    :class:`RegularizedTraining.Run`, whose ``backward(gy)`` adds each term's
    weight to the cotangents: ``w / rows`` on each integral's column at the end
    (the terms are means over the rows), ``local_error=w`` for ``error``, and the
    sampled step's own gradient.

    The random draws of solve number ``index`` (STEER's end time, the noise, the
    sampled time) come from a generator seeded by ``(seed, index)`` alone, so a
    run resumed after ``n`` solves draws what the uninterrupted run drew.
    """

    def __init__(self, regularization, dynamics, field):
        self.reg, self.dynamics, self.field = regularization, dynamics, field

    class Run:
        """One regularised solve: ``output`` (``y(t1)``), ``sol``, ``values`` (each term, unweighted),
        ``extra_nf`` (the sampled step's evaluations) and ``backward(gy) -> (gx, gparams, stats)``."""

        def __init__(self, reg, d, rows, sol, pullback, probe):
            self.reg, self.d, self.rows, self.sol, self.pullback, self.probe = reg, d, rows, sol, pullback, probe
            xp = array_module(sol.y)
            self.output = xp.ascontiguousarray(sol.y[-1][..., :d])
            self.values = {name: item(sol.y[-1][..., d + j].sum()) / rows for j, name in enumerate(reg.integrals)}
            if reg.error:
                self.values["error"] = sol.stats["local_error"]
            self.extra_nf = 0 if probe is None else probe[0].stats["nf"]
            if probe is not None:
                self.values["error_sampled"] = probe[0].stats["local_error"] * probe[1]

        def backward(self, gy):
            """``(dL/dx, dL/dparams, stats)`` for ``L = <gy, y(t1)> + sum_j w_j R_j``."""
            xp, d, reg = array_module(gy), self.d, self.reg
            g = xp.zeros_like(self.sol.y)
            g[-1][..., :d] = gy
            for j, name in enumerate(reg.integrals):
                g[-1][..., d + j] = getattr(reg, name) / self.rows
            gp_probe = 0
            if self.probe is not None:  # R_S = scale * one step's EEst |h|, and y(t_s) is output 0
                one, scale, probe_pullback = self.probe
                g_s, gp_probe, _ = probe_pullback(xp.zeros_like(one.y), local_error=reg.error_sampled * scale)
                g[0][..., :d] += g_s
            grads = self.pullback(g, local_error=reg.error)
            return xp.ascontiguousarray(grads.y0[..., :d]), grads.params + gp_probe, grads.stats

    def forward(self, params, x, tspan, options, index=0):
        """Solve number ``index`` from ``x`` for training (``options``: the layer's solver options and sensealg)."""
        reg, xp, (t0, t1) = self.reg, array_module(x), tspan
        rng = np.random.default_rng([reg.seed, index])
        direction = 1.0 if t1 > t0 else -1.0
        if reg.steer:
            t1 = t1 + float(rng.uniform(-reg.steer, reg.steer))
        d, rows, field, y0 = x.shape[-1], math.prod(x.shape[:-1]), self.field, x
        if reg.integrals:
            noise = reg.draw_noise(rng, x.shape, x.dtype, xp) if "jacobian" in reg.integrals else None
            field = RegularizedField(self.dynamics, d, reg.integrals, noise, direction)
            y0 = xp.concatenate([x, xp.zeros((*x.shape[:-1], len(reg.integrals)), dtype=x.dtype)], axis=-1)
        t_s = t0 + float(rng.uniform()) * (t1 - t0) if reg.error_sampled else None
        saveat = [t1] if t_s is None else [t_s, t1]
        sol, pullback = solve_with_vjp(field, y0, (t0, t1), params, **options, saveat=saveat)
        probe = None
        if t_s is not None:
            h = (t1 - t0) / max(sol.stats["naccept"], 1)  # the mean accepted step
            probe = self._probe(params, xp.ascontiguousarray(sol.y[0][..., :d]), t_s, h, abs(t1 - t0), options)
        return self.Run(reg, d, rows, sol, pullback, probe)

    def _probe(self, params, y_s, t_s, h, span, options):
        """One step of size ``h`` from ``y(t_s)``: ``(its solution, span / |h|, its pullback)``."""
        one, pullback = solve_with_vjp(
            self.field, y_s, (t_s, t_s + h), params, solver=options["solver"], controller=ConstantStepSize(),
            dt0=abs(h), rtol=options["rtol"], atol=options["atol"], saveat=[t_s + h], sensealg=DiscreteAdjoint(),
        )  # fmt: skip
        return one, span / abs(h), pullback
