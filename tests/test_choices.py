"""The automatic choices (issue 15): DiscreteAdjoint with the I controller, what it keeps within a
memory budget, and the BLAS threads, checked for correctness, reported in the stats, and bounded in memory."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynode as tn
from tinynode import nn, threads
from tinynode.errors import ArgumentError, MemoryBudgetExceeded
from tinynode.testing import gradcheck


def mlp(width, hidden, layers=3, dtype=np.float64, seed=0):
    sizes = [width] + [hidden] * (layers - 1) + [width]
    net = nn.Chain(*[nn.Dense(a, b, "tanh") for a, b in zip(sizes[:-1], sizes[1:])])
    return tn.VectorField(net), net.init(seed, dtype=dtype)


def gradient(field, params, y0, gy, tspan=(0.0, 1.0), **kw):
    sol, pullback = tn.solve_with_vjp(field, y0, tspan, params, saveat=kw.pop("saveat", [tspan[1]]), **kw)
    return sol, pullback(gy)


def table_bytes(y0, steps):
    """What ``steps`` start states take, and one step's table [y_n, k_1..k_7] (Tsit5)."""
    return steps * y0.nbytes, 8 * y0.nbytes


def test_the_defaults_are_reported_and_are_the_fastest_measured_choices():
    field, params = mlp(20, 10, dtype=np.float32)
    y0 = np.random.default_rng(0).standard_normal((128, 20)).astype(np.float32)
    sol, (_, _, stats) = gradient(field, params, y0, np.ones((1, 128, 20), np.float32))
    assert stats["choices"] == {
        "sensealg": "DiscreteAdjoint",
        "controller": "IController",
        "blas_threads": 1,  # the tutorial's products are far below threads.THREADED_PRODUCT
        "kept": {"activations": sol.stats["naccept"], "stages": 0, "start_states": 0},
    }
    assert sol.stats["blas_threads"] == 1
    assert stats["nvjp"] == 6 * sol.stats["naccept"]  # Tsit5's b_7 = 0: six VJPs a step, no evaluation
    assert stats["nf"] == stats["nf_resolve"] == 0


def test_neural_ode_defaults_and_the_tutorial_model_keeps_the_tutorials_choices():
    ode = tn.NeuralODE(nn.Chain(nn.Dense(4, 4, "tanh")))
    assert isinstance(ode.sensealg, tn.DiscreteAdjoint) and isinstance(ode.controller, tn.IController)
    (tut,) = tn.models.find_neural_odes(tn.models.tutorial_model())
    assert isinstance(tut.sensealg, tn.InterpolatingAdjoint) and isinstance(tut.controller, tn.PIController)
    (fixed,) = tn.models.find_neural_odes(tn.models.tutorial_model(solver=tn.RK4(), dt0=0.25))
    assert isinstance(fixed.controller, tn.ConstantStepSize)


@settings(max_examples=10, deadline=None)
@given(
    rows=st.integers(1, 6),
    width=st.integers(1, 5),
    hidden=st.integers(1, 6),
    layers=st.integers(1, 3),
    saveat=st.sampled_from([[1.0], [0.3, 1.0], [0.0, 0.5, 0.7]]),
    seed=st.integers(0, 2**16),
)
def test_every_kept_mode_gives_the_fd_gradient_of_the_fixed_step_solution(rows, width, hidden, layers, saveat, seed):
    """With fixed steps the solution is a smooth function of y0 and params, so finite differences
    of the solve itself check the discrete adjoint, whatever its record kept."""
    field, params = mlp(width, hidden, layers, seed=seed)
    y0 = np.random.default_rng(seed).standard_normal((rows, width))
    opts = dict(controller=tn.ConstantStepSize(), dt0=0.15, saveat=saveat)
    steps = 7  # ceil(1 / 0.15)
    starts, one_table = table_bytes(y0, steps)
    for memory in (None, starts + 2 * one_table, starts):

        def f(y0_, p_):
            return tn.solve(field, y0_, (0.0, 1.0), p_, **opts).y

        def vjp(y0_, p_, g, memory=memory):
            sol, pullback = tn.solve_with_vjp(
                field, y0_, (0.0, 1.0), p_, sensealg=tn.DiscreteAdjoint(memory=memory), **opts
            )
            return pullback(g)[:2]

        gradcheck(f, y0, params, vjp=vjp, tol=1e-7, eps=1e-6, seed=seed)


def test_the_kept_modes_give_the_same_gradient_to_rounding_and_are_reported():
    field, params = mlp(16, 24)
    y0 = np.random.default_rng(1).standard_normal((32, 16))
    gy = np.random.default_rng(2).standard_normal((2, 32, 16))
    kw = dict(tspan=(0.0, 2.0), saveat=[0.7, 2.0], rtol=1e-6, atol=1e-6)
    sol, (g0, gp, stats) = gradient(field, params, y0, gy, **kw)
    steps = sol_steps = stats["naccept"]  # (of the reverse sweep: one per accepted forward step)
    assert stats["choices"]["kept"] == {"activations": steps, "stages": 0, "start_states": 0}
    starts, one_table = table_bytes(y0, steps)
    step_activations = 7 * 2 * 32 * 24 * 8  # 7 stages, 2 hidden layers of 32 x 24 float64
    seen = set()
    for memory in (steps * one_table + 2 * step_activations, starts + one_table, starts):
        _, (h0, hp, other) = gradient(field, params, y0, gy, sensealg=tn.DiscreteAdjoint(memory=memory), **kw)
        np.testing.assert_allclose(h0, g0, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(hp, gp, rtol=1e-13, atol=1e-15)
        kept = other["choices"]["kept"]
        assert sum(kept.values()) == sol_steps
        assert other["nf_resolve"] == 7 * kept["start_states"]  # each re-taken step: k_1..k_7 again
        assert other["nvjp"] == stats["nvjp"]
        seen |= {mode for mode, count in kept.items() if count}
    assert seen == {"activations", "stages", "start_states"}


def test_the_memory_budget_bounds_the_peak_memory_of_a_gradient():
    """Peak traced memory of forward + backward stays within the budget plus the working arrays
    (twice a plain solve's peak: the solve's own arrays, one step's table, the sweep's scratch);
    without the budget the same gradient takes several times more."""
    field, params = mlp(64, 64)
    y0 = np.random.default_rng(0).standard_normal((512, 64))
    kw = dict(tspan=(0.0, 3.0), rtol=1e-6, atol=1e-6)

    def peak(run):
        tracemalloc.start()
        try:
            run()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    working = 2 * peak(lambda: tn.solve(field, y0, kw["tspan"], params, saveat=[3.0], rtol=1e-6, atol=1e-6))
    gy = np.ones((1,) + y0.shape)
    unbounded = peak(lambda: gradient(field, params, y0, gy, **kw))
    for states in (20, 8):
        memory = states * y0.nbytes
        used = peak(
            lambda memory=memory: gradient(field, params, y0, gy, sensealg=tn.DiscreteAdjoint(memory=memory), **kw)
        )
        assert used <= memory + working
        assert unbounded > memory + working  # the bound is not met for free


def test_a_budget_that_cannot_hold_one_state_per_step_says_what_to_do():
    field, params = mlp(8, 8)
    y0 = np.ones((4, 8))
    with pytest.raises(MemoryBudgetExceeded, match=r"memory=100 bytes.*BacksolveAdjoint\(\)"):
        gradient(field, params, y0, np.ones((1, 4, 8)), sensealg=tn.DiscreteAdjoint(memory=100))
    for bad in (0, -1, float("nan"), True, "1GB"):
        with pytest.raises(ArgumentError, match="DiscreteAdjoint\\(memory="):
            tn.DiscreteAdjoint(memory=bad)


def test_the_automatic_choice_agrees_with_the_continuous_adjoints():
    """DiscreteAdjoint is the gradient of the computed solution, the continuous ones of the exact
    solution: at a tight tolerance they agree to what the tolerance allows."""
    field, params = mlp(6, 12)
    y0 = np.random.default_rng(3).standard_normal((5, 6))
    gy = np.random.default_rng(4).standard_normal((2, 5, 6))
    kw = dict(saveat=[0.4, 1.0], rtol=1e-10, atol=1e-10)
    _, (g0, gp, _) = gradient(field, params, y0, gy, **kw)
    for alg in (tn.InterpolatingAdjoint(), tn.GaussAdjoint(), tn.BacksolveAdjoint()):
        _, (h0, hp, _) = gradient(field, params, y0, gy, sensealg=alg, **kw)
        assert np.abs(h0 - g0).max() <= 1e-7 * np.abs(g0).max()
        assert np.abs(hp - gp).max() <= 1e-7 * np.abs(gp).max()


def test_records_follow_rejections_and_non_fsal_methods():
    """The record ties each evaluation to its stage through rejected attempts (a huge first step)
    and for a method whose k_1 the loop evaluates itself (RK4: not FSAL)."""
    field, params = mlp(5, 7)
    y0 = np.random.default_rng(5).standard_normal((3, 5))
    gy = np.ones((1, 3, 5))
    for kw in (dict(dt0=1.0, rtol=1e-8, atol=1e-8), dict(solver=tn.RK4(), dt0=0.1)):
        sol, (g0, gp, stats) = gradient(field, params, y0, gy, **kw)
        if "solver" not in kw:
            assert sol.stats["nreject"] > 0
        assert stats["choices"]["kept"]["activations"] == sol.stats["naccept"]
        starts_only = tn.DiscreteAdjoint(memory=y0.nbytes * sol.stats["naccept"])  # every step re-taken
        _, (h0, hp, _) = gradient(field, params, y0, gy, sensealg=starts_only, **kw)
        np.testing.assert_allclose(h0, g0, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(hp, gp, rtol=1e-13, atol=1e-15)


def test_threads_follow_the_largest_product_and_an_explicit_pin_wins():
    if threads.threads_for(type("F", (), {"largest_product": 10**9})()) is None:
        pytest.skip("no BLAS visible to threadpoolctl")
    small = type("F", (), {"largest_product": threads.THREADED_PRODUCT - 1})()
    large = type("F", (), {"largest_product": threads.THREADED_PRODUCT})()
    assert threads.threads_for(small) == 1
    assert threads.threads_for(large) == threads._cores()
    assert threads.threads_for(object()) is None  # a field that does not say: BLAS untouched
    with threads.auto_blas_threads(small) as n:
        assert n == 1
    with threads.blas_threads(1), threads.auto_blas_threads(large) as n:
        assert n == 1  # an explicit pin (fit(blas_threads=1)) stands
    with threads.blas_threads(1, solves_choose=True), threads.auto_blas_threads(large) as n:
        assert n == threads._cores()  # fit's "auto": the solves choose
    field, params = mlp(64, 256, dtype=np.float32)
    y0 = np.zeros((1024, 64), np.float32)
    assert field.bind(params, y0.shape, y0.dtype).largest_product == 1024 * 256 * 256


def test_the_heap_setting_is_made_once_and_can_be_refused():
    """tinynode.heap asks glibc to keep freed memory (measured: large temporaries page-faulted every
    step); TINYNODE_HEAP=system refuses, and elsewhere than glibc nothing happens."""
    import subprocess
    import sys

    code = "import tinynode.heap as h; print(h.keep_freed_memory(), h.keep_freed_memory())"
    for env, expected in (({"TINYNODE_HEAP": "system"}, "False False"), ({}, None)):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**__import__("os").environ, **env}).stdout.split()  # fmt: skip
        assert out[0] == out[1]  # the second call answers as the first
        if expected is not None:
            assert " ".join(out) == expected


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1, 5), width=st.integers(1, 6), hidden=st.integers(1, 7), layers=st.integers(1, 3),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_the_kept_vjp_is_the_vjp_and_matches_finite_differences(rows, width, hidden, layers, seed):
    """MLPField.vjp_kept (from into_keeping's activations) against its own vjp and against central
    finite differences of f in float64."""
    field, params = mlp(width, hidden, layers, seed=seed)
    rng = np.random.default_rng(seed)
    y, v = rng.standard_normal(rows * width), rng.standard_normal(rows * width)
    bound = field.bind(params, (rows, width), np.float64)
    value = np.empty_like(y)
    kept = bound.into_keeping(0.0, y, value)
    gy, gp = bound.vjp_kept(0.0, y, value, kept, v)
    hy, hp = bound.vjp(0.0, y, v)
    np.testing.assert_allclose(gy, hy, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(gp, hp, rtol=1e-13, atol=1e-15)

    def f(y_, p_):
        return field(0.0, y_.reshape(rows, width), p_)

    def vjp(y_, p_, g):
        b = field.bind(p_, (rows, width), np.float64)
        out = np.empty(y_.size)
        k = b.into_keeping(0.0, y_.reshape(-1), out)
        return b.vjp_kept(0.0, y_.reshape(-1), out, k, g.reshape(-1))

    gradcheck(f, y, params, vjp=vjp, tol=1e-7, seed=seed)
