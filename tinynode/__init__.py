"""tinynode: Neural ODEs from scratch on NumPy (CPU) or CuPy (GPU).

Dense layers with hand-written VJPs, an adaptive Tsit5 integrator and
continuous adjoints, Adam and cross-entropy: everything needed to reproduce
the Lux.jl tutorial "MNIST Classification using Neural ODEs", written to be
read.
"""

__version__ = "0.1.0"

from . import backend, nn, losses, optim, testing  # noqa: E402,F401
from .errors import (  # noqa: E402,F401
    TinyNodeError, ArgumentError, ShapeError, DTypeError, BackendError, GradcheckError, DataError,
    CheckpointError, TrainingError,
)
from .losses import logit_cross_entropy, logit_cross_entropy_grad, accuracy  # noqa: E402,F401
from .optim import Adam, SGD  # noqa: E402,F401
from . import stepsize, tableaus  # noqa: E402,F401
from .errors import SolverError, MaxStepsExceeded, StepSizeUnderflow, NonFiniteError  # noqa: E402,F401
from .odeint import solve, Solution  # noqa: E402,F401
from .stepsize import PIController, IController, ConstantStepSize  # noqa: E402,F401
from .tableaus import Tsit5, Dopri5, RK4, Euler  # noqa: E402,F401
from .field import VectorField  # noqa: E402,F401
from .adjoints import (  # noqa: E402,F401
    solve_with_vjp, InterpolatingAdjoint, GaussAdjoint, BacksolveAdjoint, DiscreteAdjoint,
)
from .neural_ode import NeuralODE  # noqa: E402,F401
from . import models, data  # noqa: E402,F401
