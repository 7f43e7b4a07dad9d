"""Explicit Runge-Kutta methods as data: Butcher tableaus and their interpolants.

A method is a :class:`Tableau`: nodes ``c``, the strictly lower-triangular
matrix ``a``, the propagating weights ``b``, the error weights
``btilde = bhat - b`` (None for a fixed-step method), and a continuous
extension ``interp``. The step (:mod:`tinynode.step`) reads only
these arrays, so adding a method never touches the loop.

The continuous extension gives the solution inside a step,

    y(t_n + theta h) = y_n + h * sum_i b_i(theta) k_i,        0 <= theta <= 1,

with ``b_i(theta) = sum_k interp[i, k] * theta**(k + 1)`` (row ``i`` holds the
polynomial's coefficients of theta^1, theta^2, ...).

Every tableau checks itself when this module is imported: rows of ``a`` sum to
``c``, ``b`` and ``bhat`` sum to one, and the interpolant reaches ``b`` at
theta = 1. The order conditions are checked in the tests.
"""

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

__all__ = ["Tableau", "Tsit5", "Dopri5", "RK4", "Euler"]


@dataclass(frozen=True, eq=False)
class Tableau:
    """An explicit Runge-Kutta method (see the module docstring).

    ``order`` is the order of ``b``; ``error_order`` the order of the embedded
    ``bhat`` (adaptive methods only); ``interp_order`` that of the continuous
    extension. ``fsal`` (first same as last) holds when the last stage is
    evaluated at the new solution, so the next step reuses it as ``k_1``.
    """

    name: str
    c: np.ndarray
    a: np.ndarray
    b: np.ndarray
    btilde: np.ndarray = None
    order: int = 1
    error_order: int = None
    interp: np.ndarray = None
    interp_order: int = 1
    fsal: bool = field(init=False)
    nodes: tuple = field(init=False, repr=False, compare=False)  # c as Python floats (the step's times)
    _cast: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self):
        s = len(self.c)
        _check(self.a.shape == (s, s) and self.b.shape == (s,), self.name, "shapes of c, a, b disagree")
        _check(np.allclose(np.triu(self.a), 0), self.name, "a must be strictly lower triangular (explicit)")
        _check(np.allclose(self.a.sum(axis=1), self.c, atol=1e-14), self.name, "rows of a must sum to c")
        _check(abs(self.b.sum() - 1) < 1e-14, self.name, "b must sum to 1")
        if self.btilde is not None:
            _check(abs(self.btilde.sum()) < 1e-14, self.name, "btilde = bhat - b must sum to 0")
        _check(self.interp.shape[0] == s, self.name, "interp needs one row per stage")
        _check(
            np.allclose(self.interp.sum(axis=1), self.b, atol=1e-14),
            self.name,
            "the interpolant must reach b at theta = 1",
        )
        fsal = bool(self.c[-1] == 1 and np.allclose(self.a[-1], self.b) and self.b[-1] == 0)
        object.__setattr__(self, "fsal", fsal)
        object.__setattr__(self, "nodes", tuple(float(x) for x in self.c))
        for name in ("c", "a", "b", "btilde", "interp"):  # shared by every solve: read-only
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False

    @property
    def stages(self):
        return len(self.c)

    @property
    def adaptive(self):
        """True when the method carries an error estimate (``btilde``)."""
        return self.btilde is not None

    def __repr__(self):
        return f"{self.name}()"

    def step_weights(self, h, xp, dtype):
        """The step's weights for step size ``h``, as one ``(s + 2, s + 1)`` array of ``dtype``:

        row ``i < s``: ``[1, h a_i1, ..., h a_is]``  (stage input ``Y_i = y_n + h sum_j a_ij k_j``),
        row ``s``:     ``[1, h b_1, ..., h b_s]``   (the solution ``y_n+1``),
        row ``s + 1``: ``[0, h e_1, ..., h e_s]``   (the error estimate, ``e = bhat - b``),

        each applied to the step's table ``[y_n, k_1, ..., k_s]`` by one product
        (:func:`tinynode.step.rk_step`). The unscaled array is made once per
        array module and dtype and kept on the tableau (its own data).
        """
        s = self.stages
        key = (xp.__name__, np.dtype(dtype).str)
        template = self._cast.get(key)
        if template is None:
            w = np.zeros((s + 2, s + 1))
            w[:s, 1:] = self.a
            w[s, 1:] = self.b
            if self.btilde is not None:
                w[s + 1, 1:] = self.btilde
            template = self._cast[key] = xp.asarray(w, dtype=dtype)
        weights = template * h
        weights[: s + 1, 0] = 1.0
        return weights

    def interp_weights(self, theta):
        """``[b_1(theta), ..., b_s(theta)]`` as float64."""
        powers = theta ** np.arange(1, self.interp.shape[1] + 1)
        return self.interp @ powers

    # Tableaus are used as solver objects: ``solve(..., solver=Tsit5())``.
    def __call__(self):
        return self


def _check(ok, name, what):
    if not ok:
        raise ValueError(f"tableau {name}: {what}")


def _lower(rows, s):
    a = np.zeros((s, s))
    for i, row in enumerate(rows, start=1):
        a[i, : len(row)] = row
    return a


def _frac(*xs):
    return np.array([float(Fraction(x)) for x in xs])


# --------------------------------------------------------------------------
# Tsit5: Ch. Tsitouras, "Runge-Kutta pairs of order 5(4) satisfying only the
# first column simplifying assumption", Comput. Math. Appl. 62 (2011) 770-775.
# Float64 values as in OrdinaryDiffEq.jl's tsit_tableaus.jl.
# --------------------------------------------------------------------------
_TSIT5_C = np.array([0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0])
_TSIT5_A = _lower(
    [
        [0.161],
        [-0.008480655492356989, 0.335480655492357],
        [2.8971530571054935, -6.359448489975075, 4.3622954328695815],
        [5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525],
        [5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.028269050394068383],
        [0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081, 2.324710524099774],
    ],
    7,
)
_TSIT5_BTILDE = np.array(
    [
        -0.0017800110522257714,
        -0.0008164344596567469,
        0.007880878010261995,
        -0.1447110071732629,
        0.5823571654525552,
        -0.45808210592918697,
        0.015151515151515152,
    ]
)
# The free 4th-order interpolant, expanded: b_1 = theta (r11 + r12 theta + r13 theta^2 + r14 theta^3),
# b_i = theta^2 (r_i2 + r_i3 theta + r_i4 theta^2) for i >= 2 (Tsitouras 2011, as OrdinaryDiffEq.jl evaluates it).
_TSIT5_INTERP = np.array(
    [
        [1.0, -2.763706197274826, 2.9132554618219126, -1.0530884977290216],
        [0.0, 0.13169999999999998, -0.2234, 0.1017],
        [0.0, 3.9302962368947516, -5.941033872131505, 2.490627285651253],
        [0.0, -12.411077166933676, 30.33818863028232, -16.548102889244902],
        [0.0, 37.50931341651104, -88.1789048947664, 47.37952196281928],
        [0.0, -27.896526289197286, 65.09189467479366, -34.87065786149661],
        [0.0, 1.5, -4.0, 2.5],
    ]
)
# b_i(1) must equal b_i; the expanded table is accurate to ~1e-16, so take b from a's last row
# and let the self-check above confirm the two agree.
TSIT5 = Tableau(
    "Tsit5",
    _TSIT5_C,
    _TSIT5_A,
    _TSIT5_A[-1].copy(),
    _TSIT5_BTILDE,
    order=5,
    error_order=4,
    interp=_TSIT5_INTERP,
    interp_order=4,
)


# --------------------------------------------------------------------------
# Dopri5: J. R. Dormand, P. J. Prince, "A family of embedded Runge-Kutta
# formulae", J. Comput. Appl. Math. 6 (1980) 19-26; dense output from Hairer,
# Norsett, Wanner, Solving ODEs I, II.6 (the coefficients of DOPRI5's CONTD5).
# --------------------------------------------------------------------------
_DP5_C = _frac(0, "1/5", "3/10", "4/5", "8/9", 1, 1)
_DP5_A = _lower(
    [
        _frac("1/5"),
        _frac("3/40", "9/40"),
        _frac("44/45", "-56/15", "32/9"),
        _frac("19372/6561", "-25360/2187", "64448/6561", "-212/729"),
        _frac("9017/3168", "-355/33", "46732/5247", "49/176", "-5103/18656"),
        _frac("35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84"),
    ],
    7,
)
_DP5_B = _DP5_A[-1].copy()
_DP5_BHAT = _frac("5179/57600", 0, "7571/16695", "393/640", "-92097/339200", "187/2100", "1/40")
_DP5_D = _frac(
    "-12715105075/11282082432",
    0,
    "87487479700/32700410799",
    "-10690763975/1880347072",
    "701980252875/199316789632",
    "-1453857185/822651844",
    "69997945/29380423",
)


def _dopri5_interp():
    # Hairer's form, with D = h sum_i b_i k_i:
    #   y(theta) = y0 + theta D + theta(1-theta) (h k1 - D)
    #            + theta^2 (1-theta) (2D - h k1 - h k7) + theta^2 (1-theta)^2 h sum_i d_i k_i.
    # Collect, stage by stage, the coefficients of theta^0..theta^4 (theta^0 is always zero).
    e1, e7 = np.eye(7)[0], np.eye(7)[6]
    rows = np.zeros((7, 5))
    for i in range(7):
        for poly, weight in (
            ([0, 1], _DP5_B[i]),
            ([0, 1, -1], e1[i] - _DP5_B[i]),
            ([0, 0, 1, -1], 2 * _DP5_B[i] - e1[i] - e7[i]),
            ([0, 0, 1, -2, 1], _DP5_D[i]),
        ):
            rows[i, : len(poly)] += weight * np.array(poly, dtype=float)
    return rows[:, 1:]


DOPRI5 = Tableau(
    "Dopri5",
    _DP5_C,
    _DP5_A,
    _DP5_B,
    _DP5_BHAT - _DP5_B,
    order=5,
    error_order=4,
    interp=_dopri5_interp(),
    interp_order=4,
)


# --------------------------------------------------------------------------
# Fixed-step classics. RK4's continuous extension is the standard third-order
# one (Hairer, Norsett, Wanner I, II.6); Euler's is the straight line.
# --------------------------------------------------------------------------
_RK4 = Tableau(
    "RK4",
    _frac(0, "1/2", "1/2", 1),
    _lower([[0.5], [0, 0.5], [0, 0, 1]], 4),
    _frac("1/6", "1/3", "1/3", "1/6"),
    order=4,
    interp=np.array([[1, -1.5, 2 / 3], [0, 1, -2 / 3], [0, 1, -2 / 3], [0, -0.5, 2 / 3]]),
    interp_order=3,
)
EULER = Tableau("Euler", np.zeros(1), np.zeros((1, 1)), np.ones(1), order=1, interp=np.ones((1, 1)), interp_order=1)


def Tsit5():
    """Tsitouras' 5(4) pair with its free 4th-order interpolant (the tutorial's solver)."""
    return TSIT5


def Dopri5():
    """Dormand-Prince 5(4), torchdiffeq's default, with Hairer's 4th-order dense output."""
    return DOPRI5


def RK4():
    """The classical 4th-order Runge-Kutta method (fixed step: pass ``dt0``)."""
    return _RK4


def Euler():
    """Forward Euler (fixed step: pass ``dt0``)."""
    return EULER
