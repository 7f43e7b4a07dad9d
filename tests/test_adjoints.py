"""Gradients through the solver: every sensealg against finite differences and against each other."""

import numpy as np
import pytest
from conftest import to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

import tinynode as tn
from tinynode import nn, tableaus
from tinynode.adjoints import STATS_KEYS
from tinynode.errors import ArgumentError, MaxStepsExceeded, NonFiniteError, ShapeError
from tinynode.testing import gradcheck

SMOOTH = ["tanh", "sigmoid", "softplus"]
CONTINUOUS = [
    tn.InterpolatingAdjoint(),
    tn.InterpolatingAdjoint(checkpointing=True),
    tn.InterpolatingAdjoint(seminorm=True),
    tn.GaussAdjoint(),
    tn.GaussAdjoint(checkpointing=True),
    tn.BacksolveAdjoint(),
    tn.BacksolveAdjoint(seminorm=True),
]


@st.composite
def problems(draw, tol=None):
    """A small random field, batch, span (possibly reversed), save times and tolerance."""
    dim = draw(st.integers(1, 3))
    hidden = draw(st.integers(1, 4))
    acts = draw(st.lists(st.sampled_from(SMOOTH), min_size=2, max_size=2))
    seed = draw(st.integers(0, 2**16))
    batch = draw(st.integers(1, 3))
    t0 = draw(st.sampled_from([0.0, 0.5, -1.0]))
    length = draw(st.sampled_from([0.6, 1.0, 1.7]))
    reverse = draw(st.booleans())
    t1 = t0 - length if reverse else t0 + length
    fractions = draw(st.lists(st.sampled_from([0.0, 0.13, 0.5, 0.77]), max_size=3, unique=True))
    times = sorted({*(t0 + f * (t1 - t0) for f in fractions), t1}, key=lambda t: (t - t0) / (t1 - t0))
    rtol = tol if tol is not None else draw(st.sampled_from([1e-3, 1e-5, 1e-7]))
    net = nn.Chain(nn.Dense(dim, hidden, acts[0]), nn.Dense(hidden, dim, acts[1]))
    rng = np.random.default_rng(seed)
    params = net.init(seed, np.float64) + 0.3 * rng.standard_normal(net.num_params)
    y0 = rng.standard_normal((batch, dim))
    gy = rng.standard_normal((len(times), batch, dim))
    return tn.VectorField(net), params, y0, (t0, t1), times, rtol, gy


def replay(field, y0, params, ts, hs, t1, times, tab):
    """The same discrete computation, step sequence frozen: textbook Runge-Kutta steps and interpolation."""
    out, y = {}, y0
    if times[0] == ts[0]:
        out[times[0]] = y0
    for k, (t, h) in enumerate(zip(ts, hs)):
        ks = []
        for i in range(tab.stages):
            ks.append(field(t + tab.c[i] * h, y + h * sum(tab.a[i, j] * ks[j] for j in range(i)), params))
        t_end = t1 if k == len(ts) - 1 else ts[k + 1]
        for tau in times:
            if (tau - t) * (t_end - tau) > 0:  # strictly inside the step
                w = tab.interp_weights((tau - t) / h)
                out[tau] = y + h * sum(w[i] * ks[i] for i in range(tab.stages))
        y = y + h * sum(tab.b[j] * ks[j] for j in range(tab.stages))
        if t_end in times:
            out[t_end] = y
    return np.stack([out[t] for t in times])


@settings(max_examples=12)
@given(problems(), st.sampled_from([tableaus.Tsit5(), tableaus.Dopri5()]))  # Dopri5: b_2 = 0, yet k_2 is used
def test_discrete_adjoint_is_the_exact_discrete_gradient(prob, tab):
    field, params, y0, tspan, times, tol, gy = prob
    options = dict(solver=tab, rtol=tol, atol=tol)
    sol, pullback = tn.solve_with_vjp(field, y0, tspan, params, sensealg=tn.DiscreteAdjoint(), saveat=times, **options)
    steps = tn.solve(field, y0, tspan, params, **options).t  # the same accepted steps
    ts, hs = list(steps[:-1]), list(np.diff(steps))
    np.testing.assert_allclose(replay(field, y0, params, ts, hs, tspan[1], times, tab), sol.y, rtol=1e-12, atol=1e-12)
    stats = pullback(gy)[2]

    def f(y0_, p_):
        return replay(field, y0_, p_, ts, hs, tspan[1], times, tab)

    def vjp_checked(y0_, p_, g):
        g0, gp_, _ = pullback(g)
        return g0, gp_

    gradcheck(f, y0, params, vjp=vjp_checked, tol=1e-7, eps=1e-6)  # gradcheck draws its own cotangent
    assert stats["nvjp"] <= 6 * sol.stats["naccept"] + 7 * len(times)


def fd_exact_gradient(field, y0, params, tspan, times, gy, directions=2, eps=1e-5, seed=0):
    """Directional derivatives of <gy, y(times)> for the EXACT solution (scipy DOP853, tol 1e-13)."""
    shape = y0.shape

    def loss(y0_, p_):
        sol = solve_ivp(
            lambda t, y: field(t, y.reshape(shape), p_).reshape(-1),
            tspan,
            y0_.reshape(-1),
            method="DOP853",
            rtol=1e-13,
            atol=1e-13,
            t_eval=times,
        )
        return float((gy.reshape(len(times), -1) * sol.y.T).sum())

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(directions):
        dy, dp = rng.standard_normal(y0.shape), rng.standard_normal(params.shape)
        d_y = (loss(y0 + eps * dy, params) - loss(y0 - eps * dy, params)) / (2 * eps)
        d_p = (loss(y0, params + eps * dp) - loss(y0, params - eps * dp)) / (2 * eps)
        out.append((dy, d_y, dp, d_p))
    return out


@settings(max_examples=6)
@given(problems(tol=1e-10))
def test_continuous_adjoints_match_finite_differences_of_the_exact_solution(prob):
    field, params, y0, tspan, times, tol, gy = prob
    fds = fd_exact_gradient(field, y0, params, tspan, times, gy)
    for alg in CONTINUOUS:
        _, pullback = tn.solve_with_vjp(field, y0, tspan, params, sensealg=alg, saveat=times, rtol=tol, atol=tol)
        gy0, gp, _ = pullback(gy)
        for dy, d_y, dp, d_p in fds:
            scale_y = np.abs(gy0).sum() * np.abs(dy).max() + 1e-12
            scale_p = np.abs(gp).sum() * np.abs(dp).max() + 1e-12
            assert abs(np.sum(gy0 * dy) - d_y) <= 1e-6 * scale_y, alg
            assert abs(np.sum(gp * dp) - d_p) <= 1e-6 * scale_p, alg


def tutorial_problem(batch=16, dtype=np.float32, seed=0):
    net = nn.Chain(nn.Dense(20, 10, "tanh"), nn.Dense(10, 10, "tanh"), nn.Dense(10, 20, "tanh"))
    rng = np.random.default_rng(seed)
    y0 = np.tanh(rng.standard_normal((batch, 20))).astype(dtype)
    gy = (1e-2 * rng.standard_normal((1, batch, 20))).astype(dtype)
    return tn.VectorField(net), net.init(seed, dtype), y0, gy


@pytest.mark.parametrize("alg", CONTINUOUS, ids=repr)
def test_tutorial_tolerances_agree_with_the_discrete_gradient_in_float32(xp, alg):
    field, params, y0, gy = tutorial_problem()
    params, y0, gy = xp.asarray(params), xp.asarray(y0), xp.asarray(gy)
    kw = dict(saveat=[1.0], rtol=1e-3, atol=1e-3)
    _, exact = tn.solve_with_vjp(field, y0, (0.0, 1.0), params, sensealg=tn.DiscreteAdjoint(), **kw)
    d0, dp, _ = exact(gy)
    _, pullback = tn.solve_with_vjp(field, y0, (0.0, 1.0), params, sensealg=alg, **kw)
    g0, gp, stats = pullback(gy)
    assert g0.dtype == np.float32 and gp.dtype == np.float32 and d0.dtype == np.float32
    # continuous and discrete gradients differ by O(tol); at 1e-3 here by well under 1e-3 relative
    for a, b in ((g0, d0), (gp, dp)):
        a, b = to_numpy(a), to_numpy(b)
        assert np.abs(a - b).max() <= 1e-3 * np.abs(b).max()


def test_all_methods_agree_with_each_other_at_tight_tolerance():
    field, params, y0, gy = tutorial_problem(batch=3, dtype=np.float64)
    rng = np.random.default_rng(1)
    times = [0.25, 0.6, 1.0]
    gy = rng.standard_normal((3, 3, 20))
    grads = []
    for alg in CONTINUOUS + [tn.DiscreteAdjoint()]:
        _, pullback = tn.solve_with_vjp(field, y0, (0.0, 1.0), params, sensealg=alg, saveat=times, rtol=1e-9, atol=1e-9)
        grads.append(pullback(gy)[:2])
    for g0, gp in grads[1:]:  # (with the I controller the largest difference measured was 1.7e-8)
        for a, b in ((g0, grads[0][0]), (gp, grads[0][1])):
            assert np.abs(a - b).max() <= 1e-7 * np.abs(b).max()


def test_seminorm_takes_no_more_backward_steps():
    field, params, y0, gy = tutorial_problem(batch=8, dtype=np.float64)
    kw = dict(saveat=[1.0], rtol=1e-6, atol=1e-6)
    full = tn.solve_with_vjp(field, y0, (0.0, 1.0), params, sensealg=tn.InterpolatingAdjoint(), **kw)[1](gy)
    semi = tn.solve_with_vjp(field, y0, (0.0, 1.0), params, sensealg=tn.InterpolatingAdjoint(seminorm=True), **kw)[1](
        gy
    )
    assert semi[2]["naccept"] + semi[2]["nreject"] <= full[2]["naccept"] + full[2]["nreject"]
    assert np.abs(semi[1] - full[1]).max() <= 1e-4 * np.abs(full[1]).max()  # mu is error-controlled less


def test_backward_evaluation_counts():
    field, params, y0, gy = tutorial_problem(batch=4, dtype=np.float64)
    times = [0.5, 1.0]
    gy2 = np.concatenate([gy, gy])
    for alg in (tn.InterpolatingAdjoint(), tn.BacksolveAdjoint()):
        _, pullback = tn.solve_with_vjp(field, y0, (0.0, 1.0), params, sensealg=alg, saveat=times)
        _, _, st = pullback(gy2)
        # 2 to start (lambda(t1) stage and the initial step), 6 per attempt, 1 per jump (FSAL refresh)
        assert st["nvjp"] == 2 + 6 * (st["naccept"] + st["nreject"]) + 1
    _, pullback = tn.solve_with_vjp(field, y0, (0.0, 1.0), params, sensealg=tn.GaussAdjoint(), saveat=times)
    st = pullback(gy2)[2]
    assert st["nvjp_params"] == 3 * st["naccept"]


def test_vector_field_and_a_handwritten_field_pass_gradcheck():
    field, params, y0, _ = tutorial_problem(batch=2, dtype=np.float64)
    gradcheck(field, y0, params + 0.1, t=0.3)

    class Linear:
        """f(t, y, A) = y @ A.T, written by hand."""

        def __call__(self, t, y, A):
            return y @ A.T

        def vjp(self, t, y, A, v):
            return v @ A, v.T @ y

    A = np.random.default_rng(0).standard_normal((3, 3))
    gradcheck(Linear(), np.ones((2, 3)), A)

    class Wrong(Linear):
        def vjp(self, t, y, A, v):
            return v @ A.T, v.T @ y

    with pytest.raises(tn.GradcheckError):
        gradcheck(Wrong(), np.ones((2, 3)), A)


def test_linear_ode_gradient_is_known_in_closed_form():
    # y' = a y: y(1) = y0 e^a, so d y(1)/d y0 = e^a and d y(1)/d a = y0 e^a.
    class Scale:
        def __call__(self, t, y, a):
            return a[0] * y

        def vjp(self, t, y, a, v):
            return a[0] * v, np.array([np.sum(v * y)])

    for alg in CONTINUOUS + [tn.DiscreteAdjoint()]:
        _, pullback = tn.solve_with_vjp(
            Scale(), np.array([2.0]), (0.0, 1.0), np.array([-0.7]), sensealg=alg, saveat=[1.0], rtol=1e-10, atol=1e-10
        )
        g0, ga, _ = pullback(np.ones((1, 1)))
        assert g0[0] == pytest.approx(np.exp(-0.7), rel=1e-8), alg
        assert ga[0] == pytest.approx(2 * np.exp(-0.7), rel=1e-8), alg


def test_backward_failures_say_they_are_backward():
    class NaNBackward:
        def __call__(self, t, y, p):
            return -y

        def vjp(self, t, y, p, v):
            return np.full_like(v, np.nan), np.zeros(1)

    for alg in (tn.InterpolatingAdjoint(), tn.DiscreteAdjoint()):
        with pytest.raises(NonFiniteError, match=rf"backward pass \({alg.name}\)"):
            tn.solve_with_vjp(NaNBackward(), np.ones(2), (0.0, 1.0), np.zeros(1), saveat=[1.0], sensealg=alg)[1](
                np.ones((1, 2))
            )

    class Stiff:
        def __call__(self, t, y, p):
            return -y

        def vjp(self, t, y, p, v):
            return 1e4 * v, np.zeros(1)

    with pytest.raises(MaxStepsExceeded, match=r"backward pass \(GaussAdjoint\).*at t = "):
        tn.solve_with_vjp(
            Stiff(), np.ones(2), (0.0, 1.0), np.zeros(1), saveat=[1.0], max_steps=20, sensealg=tn.GaussAdjoint()
        )[1](np.ones((1, 2)))


def test_bad_cotangents_and_arguments():
    field, params, y0, gy = tutorial_problem(batch=2)
    sol, pullback = tn.solve_with_vjp(field, y0, (0.0, 1.0), params, saveat=[0.5, 1.0])
    with pytest.raises(ShapeError, match="shape of sol.y"):
        pullback(np.ones((1, 2, 20), np.float32))
    with pytest.raises(ArgumentError, match="not a vector field with a VJP"):
        tn.solve_with_vjp(lambda t, y, p: -y, y0, (0.0, 1.0), params)
    with pytest.raises(ArgumentError, match="sensealg must be one of"):
        tn.solve_with_vjp(field, y0, (0.0, 1.0), params, sensealg="interpolating")
    with pytest.raises(ArgumentError, match="per-component tolerances"):
        alg = tn.InterpolatingAdjoint()
        tn.solve_with_vjp(field, y0, (0.0, 1.0), params, rtol=np.full(20, 1e-3), saveat=[1.0], sensealg=alg)[1](
            np.ones((1,) + y0.shape, np.float32)
        )


def test_fixed_step_methods_reuse_dt0_backward():
    # notebook 03 found the backward pass ignoring dt0 (RK4 then refused to start)
    field, params, y0, gy = tutorial_problem(batch=2, dtype=np.float64)
    for alg in (
        tn.InterpolatingAdjoint(),
        tn.BacksolveAdjoint(),
        tn.GaussAdjoint(),
        tn.InterpolatingAdjoint(checkpointing=True),
    ):
        _, pullback = tn.solve_with_vjp(
            field, y0, (0.0, 1.0), params, sensealg=alg, solver=tn.RK4(), dt0=0.25, saveat=[1.0]
        )
        st = pullback(gy)[2]
        assert (st["naccept"], st["nreject"]) == (4, 0)
    _, pullback = tn.solve_with_vjp(
        field, y0, (0.0, 1.0), params, dt0=0.5, saveat=[1.0], controller=tn.ConstantStepSize()
    )
    assert pullback(gy)[2]["naccept"] == 2


class _PlainField:
    """A VectorField seen only through the protocol (no freeze: one VJP per stage)."""

    def __init__(self, field):
        self.field = field

    def __call__(self, t, y, p):
        return self.field(t, y, p)

    def vjp(self, t, y, p, v):
        return self.field.vjp(t, y, p, v)


STACKED_CASES = [
    (tn.InterpolatingAdjoint(), {}),
    (tn.GaussAdjoint(), {}),
    (tn.InterpolatingAdjoint(checkpointing=True), {}),
    (tn.GaussAdjoint(checkpointing=True), {}),
    (tn.InterpolatingAdjoint(seminorm=True), {"tspan": (1.0, 0.0), "saveat": [0.6, 0.0]}),  # backward in time
    (tn.InterpolatingAdjoint(), {"solver": tn.RK4(), "dt0": 0.1}),  # fixed step, not FSAL
    (tn.GaussAdjoint(), {"solver": tn.Euler(), "dt0": 0.05}),  # one stage, k_1 re-evaluated each step
    (tn.InterpolatingAdjoint(), {"lead": (2, 3)}),  # a state of shape (2, 3, 20)
]


@pytest.mark.parametrize("alg, case", STACKED_CASES, ids=[f"{a!r}-{sorted(c)}" for a, c in STACKED_CASES])
def test_stacked_stage_linearization_equals_one_vjp_per_stage(alg, case, monkeypatch):
    """The adjoints linearize f at all stage times of a backward step at once
    (tinynode.adjoints.common.StageLinearization, tinynode.fastmlp.Linearization); the reference
    is the same adjoint with one protocol VJP per stage, and the two must agree to rounding."""
    from tinynode.fastmlp import Linearization

    case = dict(case)
    lead = case.pop("lead", (5,))
    tspan = case.pop("tspan", (0.0, 1.0))
    kw = {"saveat": [0.4, 1.0], "rtol": 1e-5, "atol": 1e-5, **case}
    field, params, y0, _ = tutorial_problem(batch=int(np.prod(lead)), dtype=np.float64)
    y0 = y0.reshape(lead + (20,))
    gy = np.random.default_rng(3).standard_normal((len(kw["saveat"]),) + y0.shape)
    stacked_vjps = []
    vjp = Linearization.vjp
    monkeypatch.setattr(Linearization, "vjp", lambda self, *a, **k: stacked_vjps.append(1) or vjp(self, *a, **k))
    results = []
    for f in (field, _PlainField(field)):
        _, pullback = tn.solve_with_vjp(f, y0, tspan, params, sensealg=alg, **kw)
        results.append(pullback(gy))
    (g0, gp, st), (h0, hp, su) = results
    np.testing.assert_allclose(g0, h0, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gp, hp, rtol=1e-12, atol=1e-14)
    assert {k: st[k] for k in STATS_KEYS} == {k: su[k] for k in STATS_KEYS}  # the same steps, evaluations, VJPs
    # every evaluation but the first (and the initial step's probe) went through the stacked path;
    # Euler's one stage is k_1, which the loop evaluates before the step announces its stage times
    if kw.get("solver") is not None and kw["solver"].stages == 1:
        assert not stacked_vjps
    else:
        assert len(stacked_vjps) == st["nvjp"] - (1 if "dt0" in kw else 2) > 0


def test_stacked_stages_keep_float32():
    field, params, y0, gy = tutorial_problem(batch=8, dtype=np.float32)
    results = []
    for f in (field, _PlainField(field)):
        _, pullback = tn.solve_with_vjp(f, y0, (0.0, 1.0), params, saveat=[1.0], rtol=1e-3, atol=1e-3)
        results.append(pullback(gy))
    (g0, gp, st), (h0, hp, su) = results
    assert g0.dtype == gp.dtype == np.float32
    np.testing.assert_allclose(g0, h0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gp, hp, rtol=1e-4, atol=1e-6)


def test_a_vector_field_subclass_that_changes_f_or_its_vjp_is_used_as_written():
    """The frozen fast forms would skip an override; a subclass that changes __call__ or vjp gets none."""
    net = nn.Chain(nn.Dense(3, 4, "tanh"), nn.Dense(4, 3, "tanh"))
    params = net.init(0, dtype=np.float64)

    class Forced(tn.VectorField):
        def __call__(self, t, y, p):
            return super().__call__(t, y, p) + 1.0

    class Scaled(tn.VectorField):
        def vjp(self, t, y, p, v, **kw):
            gy, gp = super().vjp(t, y, p, v)
            return 2 * gy, 2 * gp

    y0 = np.zeros((2, 3))
    plain = tn.solve(tn.VectorField(net), y0, (0.0, 1.0), params, saveat=[1.0]).y[-1]
    forced = tn.solve(Forced(net), y0, (0.0, 1.0), params, saveat=[1.0]).y[-1]
    assert np.all(forced > plain + 0.5)
    gy = np.ones((1, 2, 3))
    base = tn.solve_with_vjp(tn.VectorField(net), y0, (0.0, 0.1), params, saveat=[0.1])[1](gy)
    scaled = tn.solve_with_vjp(Scaled(net), y0, (0.0, 0.1), params, saveat=[0.1])[1](gy)
    assert not np.allclose(scaled[1], base[1])  # the override's (wrong on purpose) VJP was used


def test_stages_are_stacked_only_for_small_states(monkeypatch):
    """Stacking saves array calls, which only pay for small states (see STACK_STAGES_MAX_ENTRIES)."""
    from tinynode.adjoints.common import STACK_STAGES_MAX_ENTRIES
    from tinynode.fastmlp import Linearization

    calls = []
    vjp = Linearization.vjp
    monkeypatch.setattr(Linearization, "vjp", lambda self, *a, **k: calls.append(1) or vjp(self, *a, **k))
    largest = STACK_STAGES_MAX_ENTRIES // 20
    for batch, stacked in ((largest, True), (largest + 1, False)):
        field, params, y0, gy = tutorial_problem(batch=batch, dtype=np.float64)
        calls.clear()
        alg = tn.InterpolatingAdjoint()
        tn.solve_with_vjp(field, y0, (0.0, 1.0), params, saveat=[1.0], sensealg=alg)[1](gy)
        assert bool(calls) == stacked
