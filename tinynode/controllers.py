"""Step-size control: the controllers and the initial step.

Everything here follows OrdinaryDiffEq.jl's defaults for Tsit5 (see the
docstrings for the exact rules). The controllers work on Python floats: the
error estimate is the one number per step that crosses from the device to the
host (:mod:`tinynode.norms`), and everything after it is scalar arithmetic.

A controller is a small immutable object with two methods and one attribute::

    state = controller.init(tableau)
    accept, dt_next, state = controller.adapt(dt, eest, state)
    controller.qmin      # the shrink factor after a step that produced NaN or Inf

``eest`` is the scaled RMS error of the attempted step (accept iff <= 1) and
``dt`` the step that was attempted (signed; only its magnitude is changed).
The controller alone decides accept or reject.
"""

import math
import numbers
from dataclasses import dataclass

from .backend import array_module
from .errors import ArgumentError
from .norms import rms

__all__ = ["PIController", "IController", "ConstantStepSize", "initial_step"]


@dataclass(frozen=True)
class PIController:
    """OrdinaryDiffEq's PI controller (Hairer and Wanner II, IV.2; Soderlind 2003).

    After a step with scaled error ``EEst`` (``errold`` is the error of the
    last accepted step, starting at ``qoldinit``)::

        q11 = EEst^beta1
        q   = clamp(q11 / errold^beta2 / safety, 1/qmax, 1/qmin)
        accept (EEst <= 1):  dt <- dt / q,                     errold <- max(EEst, qoldinit)
        reject (EEst > 1):   dt <- dt / min(1/qmin, q11/safety), errold unchanged

    Defaults are OrdinaryDiffEq's for a 5th-order method: beta1 = 7/(10*5) = 0.14,
    beta2 = 2/(5*5) = 0.08. Because ``errold`` starts at 1e-4, the first
    accepted step is damped by (1e-4)^0.08 ~ 0.48: the second step of a solve
    is often *smaller* than the first. Accepted steps may shrink, and rejected
    ones shrink gently (EEst = 2 gives x0.82).
    """

    beta1: float = 0.14
    beta2: float = 0.08
    safety: float = 0.9
    qmin: float = 0.2
    qmax: float = 10.0
    qoldinit: float = 1e-4

    def __post_init__(self):
        _check_gains(self, ("beta1", "beta2"), ("safety", "qmin", "qmax", "qoldinit"))

    def init(self, tableau):
        """The controller state: ``errold``, starting at ``qoldinit``."""
        return self.qoldinit

    def adapt(self, dt, eest, errold):
        """``(accept, next dt, new errold)`` after a step of size ``dt`` with scaled error ``eest``."""
        if eest == 0.0:
            return True, dt * self.qmax, max(eest, self.qoldinit)
        q11 = eest**self.beta1
        q = min(max(q11 / errold**self.beta2 / self.safety, 1.0 / self.qmax), 1.0 / self.qmin)
        if eest <= 1.0:
            return True, dt / q, max(eest, self.qoldinit)
        return False, dt / min(1.0 / self.qmin, q11 / self.safety), errold


@dataclass(frozen=True)
class IController:
    """The plain integral controller (OrdinaryDiffEq's ``IController``), for comparison.

    ``dt <- dt * clamp(safety * EEst^(-1/(k+1)), qmin, qmax)`` after every attempt,
    accepted or not, with ``k`` the order of the method's embedded error
    estimate (``tableau.error_order``: 4 for Tsit5, so the exponent is 1/5). No
    memory of earlier steps, no damping.
    """

    safety: float = 0.9
    qmin: float = 0.2
    qmax: float = 10.0

    def __post_init__(self):
        _check_gains(self, (), ("safety", "qmin", "qmax"))

    def init(self, tableau):
        """The exponent ``1/(k+1)`` from the method's error order: nothing else is remembered."""
        return 1.0 / ((tableau.error_order or tableau.order) + 1)

    def adapt(self, dt, eest, exponent):
        """``(accept, next dt, state)``."""
        factor = self.qmax if eest == 0.0 else min(max(self.safety * eest**-exponent, self.qmin), self.qmax)
        return eest <= 1.0, dt * factor, exponent


@dataclass(frozen=True)
class ConstantStepSize:
    """Accept every step and keep its size: fixed steps for an adaptive tableau.

    Used to measure a method's convergence order, and to run Tsit5 or Dopri5
    on a fixed grid (pass ``dt0``).
    """

    qmin: float = 0.2  # only used to shrink after a NaN/Inf step

    def init(self, tableau):
        """No state."""
        return None

    def adapt(self, dt, eest, fixed):
        """Always accept; keep the first step's size (a step shortened to land on a stop time
        does not change it)."""
        fixed = dt if fixed is None else fixed
        return True, fixed, fixed


def _check_gains(controller, non_negative, positive):
    """Every setting a finite number of the right sign, and qmin < 1 < qmax (else steps never change)."""
    name = type(controller).__name__
    for field in non_negative + positive:
        value = getattr(controller, field)
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < 0 or (field in positive and value == 0):
            sign = "positive" if field in positive else "non-negative"
            raise ArgumentError(f"{name}({field}={value!r}): must be a finite {sign} number")
    if not controller.qmin < 1 < controller.qmax:
        raise ArgumentError(f"{name}: qmin < 1 < qmax is needed (steps must be able to shrink and grow), "
                            f"got qmin={controller.qmin}, qmax={controller.qmax}")  # fmt: skip


def initial_step(field, t0, y0, f0, norm, order, dtmax):
    """Hairer's initial step (Solving ODEs I, II.4), as OrdinaryDiffEq's ``ode_determine_initdt``.

    With the scale ``sk = atol + |y0| rtol`` and RMS norms::

        d0 = ||y0 / sk||,  d1 = ||f0 / sk||
        dt0 = 0.01 d0/d1   (1e-6 if d0 or d1 < 1e-5),  at most dtmax
        f1 = f(t0 + dt0, y0 + dt0 f0),   d2 = ||(f1 - f0) / sk|| / dt0
        dt1 = (0.01 / max(d1, d2))^(1/order)   (max(1e-6, 1e-3 dt0) if both <= 1e-15)
        dt = min(100 dt0, dt1, dtmax)

    ``f0 = f(t0, y0)`` is passed in (and reused as the first stage), so this costs
    one evaluation of the bound ``field``. ``dtmax`` carries the direction of
    integration and the result is signed like it. ``y0`` and ``f0`` are flat;
    the scale and the entries that count come from the step's error ``norm``
    (:class:`tinynode.norms.ErrorNorm`). Returns ``(dt, evaluations used)``.
    """
    direction = 1.0 if dtmax > 0 else -1.0
    dtmax = abs(dtmax)
    m = norm.size
    sk = norm.scale(y0)
    d0 = rms(y0[:m] / sk)
    d1 = rms(f0[:m] / sk)
    dt0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    dt0 = min(dt0, dtmax)
    y1 = f0 * (direction * dt0)
    y1 += y0
    f1 = field.into(t0 + direction * dt0, y1, array_module(y1).empty_like(y1))
    d2 = rms((f1[:m] - f0[:m]) / sk) / dt0
    if d2 == 0.0:  # f1 == f0 exactly: nothing to learn from the second point
        return direction * min(100 * dt0, dtmax), 1
    m_ = max(d1, d2)
    dt1 = max(1e-6, 1e-3 * dt0) if m_ <= 1e-15 else (0.01 / m_) ** (1.0 / order)
    return direction * min(100 * dt0, dt1, dtmax), 1
