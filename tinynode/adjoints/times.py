"""Gradients with respect to the times: the start ``t0``, the end ``t1`` and every output time.

Chen et al. (2018, Algorithm 1) give ``dL/dt0`` and ``dL/dt_k`` alongside
``dL/dy0`` and ``dL/dtheta``. Both follow from what the pullback already has,
the output cotangents ``g_k = dL/dy(t_k)`` (explicit) and the adjoint at the
start ``lambda(t0) = dL/dy0`` (through the flow), with one evaluation of ``f``
per time:

* Moving an output time moves the output along the trajectory, so
  ``dL/dt_k = g_k^T f(t_k, y(t_k))``.                                    (T1)
* Moving the start with ``y0`` held fixed shifts the whole trajectory: the flow
  ``y(t) = Phi(t, t0, y0)`` has ``dPhi/dt0 = -(dPhi/dy0) f(t0, y0)``, so
  ``dL/dt0 = -lambda(t0)^T f(t0, y0)``.                                   (T2)

Chen et al. integrate a time adjoint ``a_t`` with ``da_t/dt = -lambda^T df/dt``
backward from ``dL/dt1`` to reach (T2). Along the trajectory
``d/dt (lambda^T f) = lambda^T df/dt`` (the ``df/dy`` terms cancel against the
adjoint equation), so that integral has the closed form above and needs no
extra state. An output at ``t0`` is ``y0`` itself and does not move with
``t0``: its ``dL/dt_k`` is 0 and its cotangent is not part of ``lambda(t0)``.
The end time ``t1`` matters only through an output there, which moves with
it: ``dL/dt1`` is that output's (T1), and 0 when ``t1`` is not an output time.

These are derivatives of the exact flow, evaluated on the computed solution;
for every gradient method they carry the forward solve's error, like
``dL/dy0`` and ``dL/dtheta`` from a continuous adjoint do.
"""

import functools

import numpy as np

from ..backend import array_module, item
from ..errors import ArgumentError

__all__ = ["Gradients"]


class Gradients(tuple):
    """What a pullback returns: ``(dL/dy0, dL/dparams, stats)``, with the time gradients on request.

    It unpacks as the 3-tuple (``gy0, gparams, stats = pullback(gy)``); the
    named attributes ``y0``, ``params``, ``stats`` are the same three. The time
    gradients cost one evaluation of ``f`` per output time plus one, and are
    computed when first asked for:

    * ``t`` : ``dL/d sol.t[k]`` for every output time, a float64 NumPy array;
    * ``t0``: ``dL/dt0``, the start moved with ``y0`` and the output times fixed;
    * ``t1``: ``dL/dt1``, the end moved together with the output at ``t1``.
    """

    def __new__(cls, gy0, gparams, stats, *, fwd, rows, lam0, local_error=0.0):
        self = super().__new__(cls, (gy0, gparams, stats))
        self._fwd, self._rows, self._lam0, self._local_error = fwd, rows, lam0, local_error
        return self

    def _check_flow_only(self):
        if self._local_error:
            raise ArgumentError(
                "the time gradients are those of a loss on the outputs (they follow the flow: "
                "tinynode/adjoints/times.py); this pullback also weighed the solver's error estimates "
                f"(local_error={self._local_error}), whose dependence on the times they do not include. "
                "Call the pullback without local_error to get them."
            )

    @property
    def y0(self):
        """``dL/dy0``, shaped like ``y0``."""
        return self[0]

    @property
    def params(self):
        """``dL/dparams``, shaped like ``params`` (None without parameters)."""
        return self[1]

    @property
    def stats(self):
        """The pullback's counters and choices."""
        return self[2]

    def _f(self, t, y):
        return self._fwd.bound.into(t, y, array_module(y).empty_like(y))

    @functools.cached_property
    def t(self):
        """``dL/dt_k = g_k^T f(t_k, y(t_k))`` for each output time (T1); 0 for an output at ``t0``."""
        self._check_flow_only()
        fwd = self._fwd
        return np.array(
            [0.0 if t == fwd.t0 else item(g @ self._f(t, y)) for t, g, y in zip(fwd.times, self._rows, fwd.y_out)]
        )

    @functools.cached_property
    def t0(self):
        """``dL/dt0 = -lambda(t0)^T f(t0, y0)`` (T2)."""
        self._check_flow_only()
        return -item(self._lam0 @ self._f(self._fwd.t0, self._fwd.y0))

    @property
    def t1(self):
        """``dL/dt1``: the (T1) of the outputs at ``t1``, 0 when ``t1`` is not an output time."""
        return float(sum(g for t, g in zip(self._fwd.times, self.t) if t == self._fwd.t1))
