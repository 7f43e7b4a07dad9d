"""The configurations, peers and targets of ``benchmarks.compare``, shared by the runner and the page.

``benchmarks.compare`` (the runner) and ``benchmarks.report`` (the page) both
import from here, and neither imports the other's constants. A configuration
key ending in :data:`BASELINE_SUFFIX` is the same tinynode configuration run
against an older checkout of tinynode (``compare --baseline DIR``): see
:func:`config_of`.
"""

#: The configuration the ratios are taken against (tinynode-interpolating / other).
REFERENCE = "tinynode-interpolating"

#: key -> (system, worker module, worker config, the library it needs, a one-line description)
CONFIGS = {
    "tinynode-interpolating": (
        "tinynode",
        "benchmarks.tinynode_mnist",
        "interpolating",
        "tinynode",
        "Tsit5, PI controller (OrdinaryDiffEq's), InterpolatingAdjoint",
    ),
    "tinynode-gauss": ("tinynode", "benchmarks.tinynode_mnist", "gauss", "tinynode", "Tsit5, PI, GaussAdjoint"),
    "tinynode-backsolve": (
        "tinynode",
        "benchmarks.tinynode_mnist",
        "backsolve",
        "tinynode",
        "Tsit5, PI, BacksolveAdjoint",
    ),
    "tinynode-discrete": (
        "tinynode",
        "benchmarks.tinynode_mnist",
        "discrete",
        "tinynode",
        "Tsit5, PI, DiscreteAdjoint",
    ),
    "tinynode-interpolating-i": (
        "tinynode",
        "benchmarks.tinynode_mnist",
        "interpolating-i",
        "tinynode",
        "Tsit5, I controller, InterpolatingAdjoint",
    ),
    "torchdiffeq-adjoint": (
        "torchdiffeq",
        "benchmarks.peers.torchdiffeq_mnist",
        "adjoint",
        "torchdiffeq",
        "dopri5, odeint_adjoint (backsolve)",
    ),
    "torchdiffeq-direct": (
        "torchdiffeq",
        "benchmarks.peers.torchdiffeq_mnist",
        "direct",
        "torchdiffeq",
        "dopri5, odeint (autograd through the solver)",
    ),
    "diffrax-backsolve": (
        "diffrax",
        "benchmarks.peers.diffrax_mnist",
        "backsolve",
        "diffrax",
        "Tsit5, PIDController (I), BacksolveAdjoint, jit",
    ),
    "diffrax-recursive": (
        "diffrax",
        "benchmarks.peers.diffrax_mnist",
        "recursive",
        "diffrax",
        "Tsit5, PIDController (I), RecursiveCheckpointAdjoint, jit",
    ),
    "torchode-autodiff": (
        "torchode",
        "benchmarks.peers.torchode_mnist",
        "autodiff-joint",
        "torchode",
        "Tsit5, IntegralController, AutoDiffAdjoint, joint batch (1, 20 B)",
    ),
}
PEERS = ("torchdiffeq", "diffrax", "torchode")
#: The fastest configuration of each peer when no measurement says otherwise (from earlier runs of this benchmark).
DEFAULT_FASTEST = {"torchdiffeq": "torchdiffeq-direct", "diffrax": "diffrax-backsolve", "torchode": "torchode-autodiff"}
OVERHEAD_WORKERS = {
    "tinynode": "benchmarks.tinynode_mnist",
    "torchdiffeq": "benchmarks.peers.torchdiffeq_mnist",
    "torchode": "benchmarks.peers.torchode_mnist",
    "diffrax": "benchmarks.peers.diffrax_mnist",
}
PACKAGES = (
    "tinynode",
    "numpy",
    "torch",
    "torchdiffeq",
    "torchode",
    "sympy",
    "jax",
    "jaxlib",
    "diffrax",
    "equinox",
    "optax",
    "matplotlib",
)
#: The targets the issue set, at N = 1500: (metric, peer configs ("fastest": the peer's fastest), at most).
TARGETS = [
    ("steady", "diffrax-fastest", 0.5, "median steady epoch <= 0.5x diffrax's fastest configuration"),
    ("steady", "torchdiffeq-adjoint", 0.2, "median steady epoch <= 0.2x torchdiffeq odeint_adjoint"),
    ("wall", "torchdiffeq-fastest", 0.3, "whole process <= 0.3x torchdiffeq's (fastest configuration)"),
    ("wall", "diffrax-fastest", 0.1, "whole process <= 0.1x diffrax's (fastest configuration)"),
]

# ----------------------------------------------------------------------------- the baseline (--baseline DIR)

#: The system name of tinynode imported from the baseline checkout.
BASELINE_SYSTEM = "tinynode (baseline)"
#: A baseline configuration's key: the tinynode configuration's key plus this.
BASELINE_SUFFIX = "@baseline"
#: The checks against the baseline: the median steady epoch of tinynode-interpolating at N = 1500 no more than
#: 5 % slower than the baseline's (current / baseline, within each round), and the forward solve's overhead
#: (benchmarks.solver_overhead's measure) at batch 128 still at most 1.3.
BASELINE_STEADY_LIMIT = 1.05
BASELINE_OVERHEAD_BATCH = 128
BASELINE_OVERHEAD_LIMIT = 1.3


def baseline_key(key):
    """The key of ``key`` (a tinynode configuration) run against the baseline checkout."""
    return key + BASELINE_SUFFIX


def is_baseline(key):
    return key.endswith(BASELINE_SUFFIX)


def current_key(key):
    """The current tree's configuration of a baseline key (``key`` itself for any other)."""
    return key[: -len(BASELINE_SUFFIX)] if is_baseline(key) else key


def config_of(key):
    """:data:`CONFIGS`' tuple for ``key``, baseline keys included (their system is :data:`BASELINE_SYSTEM`)."""
    if is_baseline(key):
        _, module, config, library, text = CONFIGS[current_key(key)]
        return (BASELINE_SYSTEM, module, config, library, f"{text}; tinynode from the baseline checkout")
    return CONFIGS[key]


def tinynode_keys():
    """The configurations that run tinynode (those a baseline can be added for)."""
    return [k for k, c in CONFIGS.items() if c[0] == "tinynode"]
