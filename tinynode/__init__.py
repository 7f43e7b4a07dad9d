"""tinynode: Neural ODEs from scratch on NumPy (CPU) or CuPy (GPU).

Dense layers with hand-written VJPs, an adaptive Tsit5 integrator and
continuous adjoints, Adam and cross-entropy: everything needed to reproduce
the Lux.jl tutorial "MNIST Classification using Neural ODEs", written to be
read. docs/architecture.md maps the modules.
"""

__version__ = "0.1.0"

from . import (  # noqa: E402  (the modules, so that tinynode.train etc. work after import tinynode)
    backend,
    checkpoint,
    controllers,
    data,
    dense,
    loop,
    losses,
    models,
    nn,
    norms,
    optim,
    protocol,
    step,
    tableaus,
    testing,
    threads,
    train,
)
from .adjoints import (  # noqa: E402
    BacksolveAdjoint,
    DiscreteAdjoint,
    GaussAdjoint,
    InterpolatingAdjoint,
    SensitivityAlgorithm,
    solve_with_vjp,
)
from .controllers import ConstantStepSize, IController, PIController  # noqa: E402
from .errors import (  # noqa: E402
    ArgumentError,
    BackendError,
    CheckpointError,
    DataError,
    DTypeError,
    GradcheckError,
    MaxStepsExceeded,
    MemoryBudgetExceeded,
    NonFiniteError,
    ShapeError,
    SolverError,
    StepSizeUnderflow,
    TinyNodeError,
    TrainingError,
)
from .field import VectorField  # noqa: E402
from .losses import accuracy, logit_cross_entropy, logit_cross_entropy_grad  # noqa: E402
from .neural_ode import NeuralODE  # noqa: E402
from .nn import Augment  # noqa: E402
from .odeint import Solution, solve  # noqa: E402
from .optim import SGD, Adam  # noqa: E402
from .tableaus import RK4, Dopri5, Euler, Tsit5  # noqa: E402

__all__ = [
    "backend",
    "checkpoint",
    "controllers",
    "data",
    "dense",
    "loop",
    "losses",
    "models",
    "nn",
    "norms",
    "optim",
    "protocol",
    "step",
    "tableaus",
    "testing",
    "threads",
    "train",
    "ArgumentError",
    "BackendError",
    "CheckpointError",
    "DataError",
    "DTypeError",
    "GradcheckError",
    "MaxStepsExceeded",
    "MemoryBudgetExceeded",
    "NonFiniteError",
    "ShapeError",
    "SolverError",
    "StepSizeUnderflow",
    "TinyNodeError",
    "TrainingError",
    "accuracy",
    "logit_cross_entropy",
    "logit_cross_entropy_grad",
    "SGD",
    "Adam",
    "ConstantStepSize",
    "IController",
    "PIController",
    "RK4",
    "Dopri5",
    "Euler",
    "Tsit5",
    "Solution",
    "solve",
    "VectorField",
    "BacksolveAdjoint",
    "DiscreteAdjoint",
    "GaussAdjoint",
    "InterpolatingAdjoint",
    "SensitivityAlgorithm",
    "solve_with_vjp",
    "NeuralODE",
    "Augment",
]
