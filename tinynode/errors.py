"""Every error tinynode raises, in one family.

Each exception says what happened and what to try. They all derive from
:class:`TinyNodeError`, so ``except tinynode.TinyNodeError`` catches anything
the library raises on purpose; anything else is a bug (or comes from user code,
which tinynode lets through unchanged).

User input is never guarded with ``assert``: asserts vanish under ``python -O``
(torchdiffeq's "underflow in dt nan" is the cautionary tale).
"""


class TinyNodeError(Exception):
    """Base class of every error tinynode raises on purpose."""


class ArgumentError(TinyNodeError, ValueError):
    """An argument has an invalid value (a tolerance, a time span, an option)."""


class ShapeError(TinyNodeError, ValueError):
    """An array has the wrong shape (input, parameters, labels, or f's output)."""


class DTypeError(TinyNodeError, TypeError):
    """Arrays of different floating dtypes were mixed (tinynode never promotes silently)."""


class BackendError(TinyNodeError, RuntimeError):
    """The requested array backend (CuPy / a CUDA device) is not available."""


class GradcheckError(TinyNodeError, AssertionError):
    """A hand-written derivative disagrees with finite differences."""


class SolverError(TinyNodeError, RuntimeError):
    """An ODE solve could not finish. ``t`` is the time reached (a float)."""

    def __init__(self, message, t=None):
        super().__init__(message)
        self.t = t


class MaxStepsExceeded(SolverError):
    """The solve used ``max_steps`` step attempts without reaching the end of the span."""


class StepSizeUnderflow(SolverError):
    """The adaptive step size shrank below what the time variable can resolve."""


class NonFiniteError(SolverError):
    """NaN or Inf appeared in the state or in the vector field's output."""


class MemoryBudgetExceeded(TinyNodeError, MemoryError):
    """What a gradient's forward pass must keep would exceed the memory budget it was given."""


class CheckpointError(TinyNodeError, ValueError):
    """A checkpoint file is damaged, or belongs to another architecture."""


class TrainingError(TinyNodeError, RuntimeError):
    """Training cannot go on (for example, the loss became NaN)."""


class DataError(TinyNodeError, ValueError):
    """A data file is missing, damaged or failed its checksum, or a download failed."""
