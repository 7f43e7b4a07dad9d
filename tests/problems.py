"""A zoo of test problems with exact (or reference) solutions, shared by the solver tests."""

import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import expm


class Problem:
    def __init__(self, name, f, y0, tspan, exact=None):
        self.name, self.f, self.y0, self.tspan, self._exact = name, f, np.asarray(y0, float), tspan, exact

    def exact(self, t):
        """The solution at time t (analytic, or scipy's DOP853 at rtol = atol = 1e-13)."""
        if self._exact is not None:
            return self._exact(t)
        flat = self.y0.reshape(-1)
        ref = solve_ivp(
            lambda t, y: self.f(t, y.reshape(self.y0.shape), None).reshape(-1),
            (self.tspan[0], t),
            flat,
            method="DOP853",
            rtol=1e-13,
            atol=1e-13,
        )
        return ref.y[:, -1].reshape(self.y0.shape)


A_LINEAR = np.array([[-0.5, 2.0, 0.0], [-2.0, -0.5, 0.3], [0.1, 0.0, -1.0]])


def linear():
    return Problem(
        "linear",
        lambda t, y, p: y @ A_LINEAR.T,
        [1.0, 0.5, -0.3],
        (0.0, 2.0),
        lambda t: expm(A_LINEAR * t) @ np.array([1.0, 0.5, -0.3]),
    )


def harmonic():
    w = 2.0

    def f(t, y, p):
        return np.stack([y[..., 1], -w * w * y[..., 0]], axis=-1)

    return Problem("harmonic", f, [1.0, 0.0], (0.0, 3.0), lambda t: np.array([np.cos(w * t), -w * np.sin(w * t)]))


def lotka_volterra():
    a, b, c, d = 1.5, 1.0, 3.0, 1.0

    def f(t, y, p):
        return np.stack([a * y[0] - b * y[0] * y[1], -c * y[1] + d * y[0] * y[1]])

    return Problem("lotka-volterra", f, [1.0, 1.0], (0.0, 4.0))


def time_dependent():
    # y' = -2 t y + cos(t), a non-autonomous field; solution by reference.
    return Problem("time-dependent", lambda t, y, p: -2 * t * y + np.cos(t), [0.5, -1.0], (0.0, 2.0))


def batched():
    # 4 independent damped oscillators stored as a (4, 2) state: one ODE, one step sequence.
    rates = np.array([0.1, 0.5, 1.0, 2.0])

    def f(t, y, p):
        return np.stack([y[:, 1], -y[:, 0] - rates * y[:, 1]], axis=1)

    y0 = np.array([[1.0, 0.0], [0.5, 0.5], [-1.0, 0.2], [0.0, 1.0]])
    return Problem("batched", f, y0, (0.0, 2.0))


ALL = [linear, harmonic, lotka_volterra, time_dependent, batched]


def bogacki_shampine():
    """Bogacki-Shampine 3(2), defined as a user would (FSAL, a linear continuous extension)."""
    from tinynode.tableaus import Tableau

    b = np.array([2 / 9, 1 / 3, 4 / 9, 0.0])
    return Tableau(
        "BS3",
        c=np.array([0.0, 0.5, 0.75, 1.0]),
        a=np.array([[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.75, 0, 0], [2 / 9, 1 / 3, 4 / 9, 0]]),
        b=b,
        btilde=np.array([7 / 24, 1 / 4, 1 / 3, 1 / 8]) - b,
        order=3,
        error_order=2,
        interp=b[:, None].copy(),
        interp_order=1,
    )


def heun_euler():
    """Heun's method with Euler's as the embedded one: 2(1), not FSAL."""
    from tinynode.tableaus import Tableau

    b = np.array([0.5, 0.5])
    return Tableau(
        "HeunEuler",
        c=np.array([0.0, 1.0]),
        a=np.array([[0.0, 0.0], [1.0, 0.0]]),
        b=b,
        btilde=np.array([1.0, 0.0]) - b,
        order=2,
        error_order=1,
        interp=b[:, None].copy(),
        interp_order=1,
    )
