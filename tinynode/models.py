"""Ready-made models: the Lux tutorial's MNIST Neural ODE.

    Flatten -> Dense(784 => 20, tanh)
            -> NeuralODE(Dense(20 => 10, tanh) -> Dense(10 => 10, tanh) -> Dense(10 => 20, tanh),
                         t in [0, 1], Tsit5, rtol = atol = 1e-3, final state only)
            -> Dense(20 => 10)

15,700 + 540 + 210 = 16,450 parameters, float32.
"""

from .adjoints import InterpolatingAdjoint
from .controllers import PIController
from .neural_ode import NeuralODE
from .nn import Chain, Dense, Flatten

__all__ = ["tutorial_model", "find_neural_odes"]


def tutorial_model(
    sensealg=None, solver=None, rtol=1e-3, atol=1e-3, controller=None, *, dt0=None, hidden=10, regularize=None
):
    """The tutorial's classifier (16,450 parameters); the options go to its NeuralODE.

    ``dt0`` sets the first step (required by the fixed-step ``RK4()`` and
    ``Euler()``); ``hidden`` is the width of the ODE block's inner layers
    (the tutorial's 10), for a wider model on the same task; ``regularize``: the
    NeuralODE's training regularisers (:mod:`tinynode.regularizers`), None for none.

    By default it makes the tutorial's choices, OrdinaryDiffEq's PI controller
    and InterpolatingAdjoint, not the library's (the I controller and
    DiscreteAdjoint: docs/adjoints.md, "Which method"), so that it reproduces
    the tutorial's computation.
    """
    sensealg = InterpolatingAdjoint() if sensealg is None else sensealg
    controller = PIController() if controller is None and (solver is None or solver.adaptive) else controller
    dynamics = Chain(Dense(20, hidden, "tanh"), Dense(hidden, hidden, "tanh"), Dense(hidden, 20, "tanh"))
    ode = NeuralODE(dynamics, (0.0, 1.0), solver=solver, controller=controller, rtol=rtol, atol=atol, dt0=dt0,
                    sensealg=sensealg, regularize=regularize)  # fmt: skip
    return Chain(Flatten(), Dense(784, 20, "tanh"), ode, Dense(20, 10))


def find_neural_odes(layer):
    """Every NeuralODE inside a layer (for reading their evaluation counts)."""
    if isinstance(layer, NeuralODE):
        return [layer]
    found = []
    for sub in getattr(layer, "layers", ()):
        found.extend(find_neural_odes(sub))
    return found
