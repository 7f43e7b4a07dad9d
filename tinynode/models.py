"""Ready-made models: the Lux tutorial's MNIST Neural ODE.

    Flatten -> Dense(784 => 20, tanh)
            -> NeuralODE(Dense(20 => 10, tanh) -> Dense(10 => 10, tanh) -> Dense(10 => 20, tanh),
                         t in [0, 1], Tsit5, rtol = atol = 1e-3, final state only)
            -> Dense(20 => 10)

15,700 + 540 + 210 = 16,450 parameters, float32.
"""

from .neural_ode import NeuralODE
from .nn import Chain, Dense, Flatten

__all__ = ["tutorial_model", "find_neural_odes"]


def tutorial_model(sensealg=None, solver=None, rtol=1e-3, atol=1e-3, controller=None):
    """The tutorial's classifier (16,450 parameters); the options go to its NeuralODE."""
    dynamics = Chain(Dense(20, 10, "tanh"), Dense(10, 10, "tanh"), Dense(10, 20, "tanh"))
    return Chain(
        Flatten(),
        Dense(784, 20, "tanh"),
        NeuralODE(dynamics, (0.0, 1.0), solver=solver, controller=controller, rtol=rtol, atol=atol, sensealg=sensealg),
        Dense(20, 10),
    )


def find_neural_odes(layer):
    """Every NeuralODE inside a layer (for reading their evaluation counts)."""
    if isinstance(layer, NeuralODE):
        return [layer]
    found = []
    for sub in getattr(layer, "layers", ()):
        found.extend(find_neural_odes(sub))
    return found
