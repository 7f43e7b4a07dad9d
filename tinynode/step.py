"""One explicit Runge-Kutta step: the algorithm, as the textbook writes it.

For a method with ``s`` stages (a :class:`~tinynode.tableaus.Tableau`: nodes
``c``, matrix ``a``, weights ``b``, error weights ``e = bhat - b``), one step of
size ``h`` from ``(t_n, y_n)`` is::

    k_1 = f(t_n, y_n)
    k_i = f(t_n + c_i h, Y_i),     Y_i = y_n + h sum_{j<i} a_ij k_j      (i = 2..s)
    y_n+1 = y_n + h sum_i b_i k_i                                         (order p)
    err   = h sum_i e_i k_i        = (embedded solution, order p - 1) - y_n+1

Tsit5 and Dopri5 are *FSAL* (first same as last): their last stage is evaluated
at ``y_n+1`` itself (``c_s = 1``, ``a_s = b``), so ``k_s = f(t_n+1, y_n+1)`` is the
next step's ``k_1``, and a step costs ``s - 1`` new evaluations.

The stages are kept in one table ``B = [y_n, k_1, ..., k_s]`` (a row each, the
state flattened), so every combination above is ONE matrix-vector product with
a row of :meth:`~tinynode.tableaus.Tableau.step_weights`: ``Y_i = [1, h a_i] @ B``.
"""

from .backend import array_module
from .protocol import BoundField
from .tableaus import Tableau

__all__ = ["rk_step"]


def rk_step(field: BoundField, tableau: Tableau, t: float, h: float, B, y_new, stage):
    """Take one step of size ``h`` from ``(t, y_n)``; return the error estimate (None if fixed-step).

    Arguments:
        field: the vector field bound for this solve (:mod:`tinynode.protocol`):
            ``field.into(t, y, out)`` writes ``f(t, y)`` into ``out``.
        tableau: the method.
        t, h: the time and the (signed) step size.
        B: the ``(s + 1, n)`` table ``[y_n, k_1, ..., k_s]``. On entry row 0
            holds ``y_n`` and row 1 ``k_1 = f(t, y_n)``; the step fills rows 2..s.
        y_new: receives ``y_n+1``.
        stage: scratch for the stage inputs ``Y_i``; it receives the error estimate.
    """
    xp = array_module(B)
    s = tableau.stages
    W = tableau.step_weights(h, xp, B.dtype)
    times = [t + c * h for c in tableau.nodes]  # t_n + c_i h, as Python floats
    field.prepare(times[1:])  # all the stage times this step will evaluate, before it evaluates any
    for i in range(1, s):  # stage i + 1 (0-based arrays: c[i], a[i], its k in row i + 1 of B)
        Y = y_new if tableau.fsal and i == s - 1 else stage  # FSAL: the last stage input IS y_n+1
        xp.dot(W[i, : i + 1], B[: i + 1], out=Y)  # Y_i+1 = y_n + h sum_j a_i+1,j k_j
        field.into(times[i], Y, B[i + 1])  # k_i+1 = f(t_n + c_i+1 h, Y_i+1)
    if not tableau.fsal:
        xp.dot(W[s], B, out=y_new)  # y_n+1 = y_n + h sum_i b_i k_i
    if not tableau.adaptive:
        return None
    return xp.dot(W[s + 1], B, out=stage)  # err = h sum_i e_i k_i (into stage: free by now)
