"""The integrator: accuracy against references, convergence orders, step control, dtypes, failures."""

import math

import numpy as np
import problems
import pytest
from conftest import to_numpy

import tinynode
from tinynode import backend, controllers, tableaus
from tinynode.dense import interpolate
from tinynode.errors import (
    ArgumentError,
    DTypeError,
    MaxStepsExceeded,
    NonFiniteError,
    ShapeError,
    StepSizeUnderflow,
    TinyNodeError,
)
from tinynode.loop import integrate
from tinynode.norms import ErrorNorm
from tinynode.protocol import BoundField, bind

ADAPTIVE = [tableaus.Tsit5(), tableaus.Dopri5()]


def on(xp, problem):
    """The problem's field and initial state on backend xp."""

    def f(t, y, p):
        return xp.asarray(problem.f(t, to_numpy(y), p))

    return f, xp.asarray(problem.y0)


# --- accuracy against references -------------------------------------------------------


@pytest.mark.parametrize("make", problems.ALL, ids=lambda m: m.__name__)
@pytest.mark.parametrize("tab", ADAPTIVE, ids=lambda t: t.name)
def test_tight_tolerance_matches_the_reference(make, tab):
    prob = make()
    sol = tinynode.solve(prob.f, prob.y0, prob.tspan, solver=tab, rtol=1e-10, atol=1e-10)
    assert sol.t[-1] == prob.tspan[1]
    err = np.abs(sol.y[-1] - prob.exact(prob.tspan[1])).max()
    assert err < 5e-9 * max(1, np.abs(prob.y0).max())


@pytest.mark.parametrize("make", problems.ALL, ids=lambda m: m.__name__)
def test_error_shrinks_with_the_tolerance(make):
    prob = make()
    ref = prob.exact(prob.tspan[1])
    errs = [
        np.abs(tinynode.solve(prob.f, prob.y0, prob.tspan, rtol=tol, atol=tol).y[-1] - ref).max()
        for tol in (1e-3, 1e-5, 1e-7, 1e-9)
    ]
    assert all(later < earlier for earlier, later in zip(errs, errs[1:])), errs
    # each step of 100x in tolerance buys between 10x and 1e4x in accuracy
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    assert np.all(ratios > 10) and np.all(ratios < 1e4), ratios
    assert errs[-1] < 1e-7


def test_numpy_and_backends_agree(xp):
    prob = problems.lotka_volterra()
    f, y0 = on(xp, prob)
    sol = tinynode.solve(f, y0, prob.tspan, rtol=1e-8, atol=1e-8)
    ref = tinynode.solve(prob.f, prob.y0, prob.tspan, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(to_numpy(sol.y), ref.y, rtol=1e-12)
    assert sol.stats == ref.stats


# --- convergence orders ----------------------------------------------------------------


def fitted_slope(hs, errs):
    return np.polyfit(np.log(hs), np.log(errs), 1)[0]


@pytest.mark.parametrize(
    "tab", TABS := [tableaus.Tsit5(), tableaus.Dopri5(), tableaus.RK4(), tableaus.Euler()], ids=lambda t: t.name
)
def test_fixed_step_convergence_order(tab):
    prob = problems.linear()  # (Lotka-Volterra on [0, 2] is superconvergent for Tsit5: a poor order test)
    T = prob.tspan[1]
    ref = prob.exact(T)
    ns = [16, 32, 64, 128] if tab.order >= 4 else [200, 400, 800, 1600]
    hs, errs = [], []
    for n in ns:
        sol = tinynode.solve(
            prob.f, prob.y0, (0, T), solver=tab, dt0=T / n, saveat=[T], controller=controllers.ConstantStepSize()
        )
        assert sol.stats["naccept"] == n
        hs.append(T / n)
        errs.append(np.abs(sol.y[-1] - ref).max())
    assert fitted_slope(hs, errs) == pytest.approx(tab.order, abs=0.3)


@pytest.mark.parametrize("tab", TABS, ids=lambda t: t.name)
def test_interpolant_order(tab):
    # One step of size h from the exact state: the dense output at theta = 0.4 has local error
    # O(h^(p*+1)) for an interpolant of order p*.
    prob = problems.harmonic()
    hs = [0.2, 0.1, 0.05, 0.025] if tab.interp_order > 1 else [0.02, 0.01, 0.005, 0.0025]
    errs = []
    for h in hs:
        sol = tinynode.solve(
            prob.f, prob.y0, (0, h), solver=tab, dt0=h, dense=True, controller=controllers.ConstantStepSize()
        )
        errs.append(np.abs(sol(0.4 * h) - prob.exact(0.4 * h)).max())
    assert fitted_slope(hs, errs) == pytest.approx(tab.interp_order + 1, abs=0.3)


# --- one step, written out independently -------------------------------------------------


def textbook_tsit5_step(f, t, y, h):
    tab = tableaus.Tsit5()
    k = []
    for i in range(7):
        yi = y + h * sum(tab.a[i, j] * k[j] for j in range(i))
        k.append(f(t + tab.c[i] * h, yi, None))
    y1 = y + h * sum(tab.b[j] * k[j] for j in range(7))
    err = h * sum(tab.btilde[j] * k[j] for j in range(7))
    return y1, err, k


def test_one_step_matches_the_textbook_formulas():
    prob = problems.lotka_volterra()
    h = 0.3
    y1, _, k = textbook_tsit5_step(prob.f, 0.0, prob.y0, h)
    sol = tinynode.solve(prob.f, prob.y0, (0, h), dt0=h, dense=True, controller=controllers.ConstantStepSize())
    np.testing.assert_allclose(sol.y[-1], y1, rtol=1e-14, atol=1e-15)  # float64 rounding
    theta = 0.37
    w = tableaus.Tsit5().interp_weights(theta)
    mid = prob.y0 + h * sum(w[i] * k[i] for i in range(7))
    np.testing.assert_allclose(sol(theta * h), mid, rtol=1e-14, atol=1e-15)


def reference_step_sequence(f, y0, t0, t1, rtol, atol):
    """The PI controller and the initial step (docs/solvers.md) written as plainly as possible:
    a list of accepted times."""
    ctrl = controllers.PIController()

    def norm(v):
        return math.sqrt(np.mean(v * v))

    f0 = f(t0, y0, None)
    sk = atol + np.abs(y0) * rtol
    d0, d1 = norm(y0 / sk), norm(f0 / sk)
    dt0 = 1e-6 if min(d0, d1) < 1e-5 else 0.01 * d0 / d1
    f1 = f(t0 + dt0, y0 + dt0 * f0, None)
    d2 = norm((f1 - f0) / sk) / dt0
    dt = min(100 * dt0, (0.01 / max(d1, d2)) ** (1 / 5), t1 - t0)
    t, y, errold, times = t0, y0, 1e-4, []
    while t < t1:
        if t + dt >= t1 - 1e-14:
            dt = t1 - t
        y1, err, _ = textbook_tsit5_step(f, t, y, dt)
        eest = norm(err / (atol + np.maximum(np.abs(y), np.abs(y1)) * rtol))
        q11 = eest**ctrl.beta1
        q = min(max(q11 / errold**ctrl.beta2 / ctrl.safety, 1 / ctrl.qmax), 1 / ctrl.qmin)
        if eest <= 1:
            t, y, errold = t + dt, y1, max(eest, 1e-4)
            times.append(t)
            dt = min(dt / q, t1 - t0)
        else:
            dt = dt / min(1 / ctrl.qmin, q11 / ctrl.safety)
    return times


@pytest.mark.parametrize(
    "make", [problems.lotka_volterra, problems.time_dependent, problems.batched], ids=lambda m: m.__name__
)
@pytest.mark.parametrize("tol", [1e-3, 1e-6])
def test_step_sequence_follows_ordinarydiffeq_rules(make, tol):
    prob = make()
    expected = reference_step_sequence(prob.f, prob.y0, *prob.tspan, tol, tol)
    sol = tinynode.solve(prob.f, prob.y0, prob.tspan, rtol=tol, atol=tol, controller=tinynode.PIController())
    # The error estimate is a difference of O(1) terms giving O(tol), so summation order alone moves
    # EEst by ~1e-16/tol relative; any real difference in the rules moves the steps by percents.
    assert len(sol.t) == len(expected) + 1
    np.testing.assert_allclose(sol.t[1:], expected, rtol=1e-13 / tol)


# --- step control and counting --------------------------------------------------------------


def test_pi_controller_rules():
    c = controllers.PIController()
    accept, dt, errold = c.adapt(1.0, 0.01, c.init(tableaus.TSIT5))
    assert accept and dt == pytest.approx(0.9 * 1e-4**0.08 * 0.01**-0.14) and dt < 1  # first-step damping
    assert errold == 0.01
    accept, dt, errold2 = c.adapt(1.0, 2.0, errold)
    assert not accept and dt == pytest.approx(0.9 * 2**-0.14) and errold2 == errold  # gentle rejection
    assert c.adapt(1.0, 1e9, errold)[1] == pytest.approx(0.2)  # shrink floor
    assert c.adapt(1.0, 1e-30, 0.5)[1] == pytest.approx(10.0)  # growth cap
    assert c.adapt(1.0, 0.0, 0.5)[:2] == (True, 10.0)


def test_i_controller_rules():
    c = controllers.IController()
    state = c.init(tableaus.TSIT5)  # the exponent 1/(k+1) from Tsit5's embedded order k = 4
    assert c.adapt(1.0, 0.5, state)[:2] == (True, pytest.approx(0.9 * 0.5**-0.2))
    assert c.adapt(1.0, 3.0, state)[:2] == (False, pytest.approx(0.9 * 3**-0.2))
    assert c.adapt(1.0, 3.0, c.init(problems.bogacki_shampine()))[1] == pytest.approx(0.9 * 3 ** (-1 / 3))


def test_the_i_controller_is_the_default_and_the_pi_controller_changes_the_steps():
    prob = problems.lotka_volterra()
    pi = tinynode.solve(prob.f, prob.y0, prob.tspan, rtol=1e-6, atol=1e-6, controller=tinynode.PIController())
    i = tinynode.solve(prob.f, prob.y0, prob.tspan, rtol=1e-6, atol=1e-6, controller=tinynode.IController())
    default = tinynode.solve(prob.f, prob.y0, prob.tspan, rtol=1e-6, atol=1e-6)
    assert pi.stats != i.stats and default.stats == i.stats
    np.testing.assert_array_equal(default.t, i.t)
    np.testing.assert_allclose(i.y[-1], prob.exact(prob.tspan[1]), rtol=1e-4)


def test_initial_step_heuristic_by_hand():
    lam, rtol, atol = -3.0, 1e-3, 1e-6
    sol = tinynode.solve(lambda t, y, p: lam * y, np.ones(1), (0, 10), rtol=rtol, atol=atol, saveat=[10.0])
    sk = atol + rtol
    d1 = abs(lam) / sk
    dt0 = 0.01 * (1 / sk) / d1
    d2 = abs(lam * lam * dt0) / sk / dt0
    expected = min(100 * dt0, (0.01 / max(d1, d2)) ** 0.2)
    norm = ErrorNorm(rtol, atol, 1, np.float64)
    field = bind(lambda t, y, p: lam * y, None, (1,), np.float64)
    got, nf = controllers.initial_step(field, 0.0, np.ones(1), np.array([lam]), norm, 5, 10.0)
    assert got == pytest.approx(expected, rel=1e-12) and nf == 1
    assert sol.stats["nf"] == 2 + 6 * (sol.stats["naccept"] + sol.stats["nreject"])


def test_evaluation_counts_and_one_sync_per_step(xp):
    prob = problems.lotka_volterra()
    f, y0 = on(xp, prob)
    backend.reset_counters()
    sol = tinynode.solve(f, y0, prob.tspan, rtol=1e-6, atol=1e-6, saveat=[prob.tspan[1]])
    steps = sol.stats["naccept"] + sol.stats["nreject"]
    assert sol.stats["nreject"] > 0
    assert sol.stats["nf"] == 2 + 6 * steps
    # one sync per step attempt, plus a fixed few at the start (finite checks, initial step norms)
    assert steps <= backend.counters["host_syncs"] <= steps + 6
    fixed = tinynode.solve(f, y0, prob.tspan, dt0=0.01, rtol=1e-6, atol=1e-6)
    assert fixed.stats["nf"] == 1 + 6 * (fixed.stats["naccept"] + fixed.stats["nreject"])


def test_per_component_tolerances():
    prob = problems.lotka_volterra()
    scalar = tinynode.solve(prob.f, prob.y0, prob.tspan, rtol=1e-6, atol=1e-6)
    arrays = tinynode.solve(prob.f, prob.y0, prob.tspan, rtol=np.full(2, 1e-6), atol=np.full(2, 1e-6))
    np.testing.assert_array_equal(scalar.y, arrays.y)
    loose_second = tinynode.solve(prob.f, prob.y0, prob.tspan, rtol=[1e-6, 1e-2], atol=[1e-6, 1e-2])
    assert loose_second.stats["naccept"] < scalar.stats["naccept"]


# --- time direction, saving, dense output -------------------------------------------------------


@pytest.mark.parametrize("make", problems.ALL, ids=lambda m: m.__name__)
def test_reversed_time_returns_to_the_start(make):
    prob = make()
    t0, t1 = prob.tspan
    fwd = tinynode.solve(prob.f, prob.y0, (t0, t1), rtol=1e-10, atol=1e-10)
    back = tinynode.solve(prob.f, fwd.y[-1], (t1, t0), rtol=1e-10, atol=1e-10)
    assert back.t[-1] == t0 and np.all(np.diff(back.t) < 0)
    np.testing.assert_allclose(back.y[-1], prob.y0, atol=1e-7)


def test_saveat_dense_and_exact_agree():
    prob = problems.harmonic()
    times = [0.0, 0.25, 1.0, 2.9, 3.0]
    sol = tinynode.solve(prob.f, prob.y0, prob.tspan, rtol=1e-9, atol=1e-9, saveat=times, dense=True)
    assert sol.t.tolist() == times and sol.y.shape == (5, 2)
    np.testing.assert_array_equal(sol.y[0], prob.y0)
    for t, y in zip(times, sol.y):
        np.testing.assert_allclose(y, prob.exact(t), atol=1e-7)
        np.testing.assert_allclose(sol(t), y, rtol=1e-13, atol=1e-15)
    assert sol([0.5, 1.5]).shape == (2, 2)
    with pytest.raises(ArgumentError, match="outside the solved span"):
        sol(3.5)


def test_default_saving_is_every_step():
    prob = problems.linear()
    sol = tinynode.solve(prob.f, prob.y0, prob.tspan)
    assert len(sol.t) == sol.stats["naccept"] + 1 and sol.t[0] == 0 and sol.t[-1] == 2.0
    no_start = tinynode.solve(prob.f, prob.y0, prob.tspan, save_start=False)
    assert len(no_start.t) == sol.stats["naccept"]
    np.testing.assert_array_equal(no_start.y, sol.y[1:])


def test_backward_saveat():
    prob = problems.linear()
    sol = tinynode.solve(prob.f, prob.exact(2.0), (2.0, 0.0), rtol=1e-10, atol=1e-10, saveat=[1.5, 0.5, 0.0])
    for t, y in zip(sol.t, sol.y):
        np.testing.assert_allclose(y, prob.exact(t), atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_everywhere(xp, dtype):
    seen = set()

    def f(t, y, p):
        seen.add((y.dtype, type(t)))
        return -y * p

    y0 = xp.ones((3, 4), dtype=dtype)
    p = xp.asarray(np.float32(0.7) if dtype == np.float32 else 0.7, dtype=dtype)
    sol = tinynode.solve(f, y0, (0.0, 1.0), p, saveat=[0.5, 1.0], dense=True, rtol=1e-3, atol=1e-3)
    assert seen == {(np.dtype(dtype), float)}
    assert sol.y.dtype == dtype and sol(0.3).dtype == dtype and sol.t.dtype == np.float64
    np.testing.assert_allclose(to_numpy(sol.y[-1]), np.exp(-0.7), rtol=1e-3)


# --- failures -----------------------------------------------------------------------------


def test_max_steps_says_where_and_what_to_do():
    prob = problems.lotka_volterra()
    with pytest.raises(MaxStepsExceeded, match=r"max_steps = 5 .* at t = 0\.\d+.*Increase max_steps") as e:
        tinynode.solve(prob.f, prob.y0, prob.tspan, rtol=1e-8, atol=1e-8, max_steps=5)
    assert 0 < e.value.t < 4


def test_blow_up_is_a_step_size_underflow():
    # y' = y^2, y(0) = 1 explodes at t = 1
    with pytest.raises(StepSizeUnderflow, match=r"underflowed .* at t = (0\.99|1\.00)") as e:
        tinynode.solve(lambda t, y, p: y * y, np.ones(1), (0.0, 2.0))
    assert e.value.t == pytest.approx(1.0, abs=1e-2)


def test_nan_from_the_field_is_not_called_underflow():
    def f(t, y, p):
        return np.full_like(y, np.nan) if t > 0.5 else -y

    with pytest.raises(NonFiniteError, match=r"vector field returned NaN or Inf at t = 0\.5.*from a finite state"):
        tinynode.solve(f, np.ones(2), (0.0, 1.0))

    def g(t, y, p):  # NaN from the state: sqrt of a negative
        return -np.sqrt(y) - 1.0

    with np.errstate(invalid="ignore"):
        with pytest.raises(NonFiniteError, match="vector field returned NaN or Inf .* from a finite state"):
            tinynode.solve(g, np.ones(2), (0.0, 3.0))


def test_nan_initial_state_and_field():
    with pytest.raises(NonFiniteError, match="y0 contains NaN"):
        tinynode.solve(lambda t, y, p: -y, np.array([1.0, np.nan]), (0, 1))
    with pytest.raises(NonFiniteError, match=r"f\(t0, y0\) contains NaN"):
        with np.errstate(invalid="ignore", divide="ignore"):
            tinynode.solve(lambda t, y, p: y / 0.0 * 0.0, np.zeros(2), (0, 1))


def test_field_with_wrong_shape_or_dtype():
    with pytest.raises(ShapeError, match=r"returned shape \(3,\) .* state has shape \(2,\)"):
        tinynode.solve(lambda t, y, p: np.zeros(3), np.ones(2), (0, 1))
    with pytest.raises(DTypeError, match="returned dtype float64 .* float32 state"):
        tinynode.solve(lambda t, y, p: -y.astype(np.float64), np.ones(2, np.float32), (0, 1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(tspan=(0, 0)), "zero length"),
        (dict(tspan=(0, np.inf)), "finite"),
        (dict(tspan="ab"), "pair of numbers"),
        (dict(rtol=-1e-3), "rtol must be finite and non-negative"),
        (dict(atol=0.0), "atol must be finite and positive"),
        (dict(atol=np.nan), "atol"),
        (dict(saveat=[0.5, 0.2]), "ordered"),
        (dict(saveat=[1.5]), "within tspan"),
        (dict(max_steps=0), "max_steps"),
        (dict(dt0=0.0), "dt0"),
        (dict(solver=tableaus.RK4()), "fixed-step method: give the step size with dt0"),
        (dict(solver="tsit5"), "solver must be a tableau"),
        (dict(controller="pi"), "controller must be a step-size controller"),
        (dict(max_steps=10.5), "max_steps"),
        (dict(saveat=[0.5, np.nan]), "finite times"),
        (dict(atol=np.ones(3)), "does not broadcast"),
    ],
)
def test_invalid_arguments(kwargs, match):
    args = dict(tspan=(0.0, 1.0))
    args.update(kwargs)
    with pytest.raises(ArgumentError, match=match):
        tinynode.solve(lambda t, y, p: -y, np.ones(2), args.pop("tspan"), **args)


def test_invalid_y0():
    with pytest.raises(DTypeError, match="float32 or float64"):
        tinynode.solve(lambda t, y, p: -y, np.ones(2, dtype=int), (0, 1))


def test_every_failure_is_in_one_family():
    for exc in (MaxStepsExceeded, StepSizeUnderflow, NonFiniteError, ShapeError, DTypeError, ArgumentError):
        assert issubclass(exc, TinyNodeError)


def test_user_exceptions_pass_through_unchanged():
    class Mine(Exception):
        pass

    def f(t, y, p):
        raise Mine("from the user")

    with pytest.raises(Mine, match="from the user"):
        tinynode.solve(f, np.ones(2), (0, 1))


def test_dense_at_polynomial_form_equals_the_stage_combination():
    """DenseOutput.at (the adjoints' path: the step's interpolating polynomial) gives
    the same values as y_n + h sum b_i(theta) k_i, across steps and in both directions."""
    prob = problems.lotka_volterra()
    for tspan in (prob.tspan, prob.tspan[::-1]):
        y0 = prob.y0 if tspan == prob.tspan else tinynode.solve(prob.f, prob.y0, prob.tspan, rtol=1e-8, atol=1e-8).y[-1]
        sol = tinynode.solve(prob.f, y0, tspan, rtol=1e-4, atol=1e-4, dense=True)
        d = sol.dense
        assert len(d.ts) > 5
        for t in np.linspace(*tspan, 37):
            n = max(i for i, tn_ in enumerate(d.ts) if (tn_ - t) * np.sign(tspan[1] - tspan[0]) <= 0)
            expect = interpolate(d.tableau, d.buffers[n], d.hs[n], (t - d.ts[n]) / d.hs[n])
            np.testing.assert_allclose(d.at(t), expect, rtol=1e-12, atol=1e-12)
        # at_many: several times, inside one step or across several, in one call
        times = list(np.linspace(*tspan, 23))
        for chunk in (times, times[3:5], times[-1:]):
            np.testing.assert_allclose(d.at_many(chunk), np.stack([d.at(t) for t in chunk]), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("jump, solver", [(False, None), (True, None), (True, "rk4"), (False, "euler")])
def test_prepare_announces_the_times_of_every_evaluation(jump, solver):
    """The adjoints linearize a step's stages in prepare(times): every later evaluation of f
    in that step must be at one of those times (k_1 included only after a jump)."""
    prob = problems.lotka_volterra()
    log = []

    class Recording(BoundField):
        def into(self, t, y, out):
            log.append(("f", t))
            return super().into(t, y, out)

        def prepare(self, times):
            log.append(("at", list(times)))

    def on_tstop(t, y):
        y += 0.01
        return True

    tableau = {None: tableaus.Tsit5, "rk4": tableaus.RK4, "euler": tableaus.Euler}[solver]()
    field = Recording(prob.f, None, prob.y0.shape, prob.y0.dtype)
    integrate(
        field,
        prob.y0.copy(),
        (0.0, 5.0),
        solver=tableau,
        controller=controllers.PIController() if tableau.adaptive else controllers.ConstantStepSize(),
        norm=ErrorNorm(1e-5, 1e-5, prob.y0.size, prob.y0.dtype),
        dt0=None if tableau.adaptive else 0.25,
        tstops=[1.3, 2.9] if jump else (),
        on_tstop=on_tstop,
    )
    announced, attempts = None, 0
    for kind, value in log:
        if kind == "at":
            announced, attempts = value, attempts + 1
            assert all(type(t) is float for t in value)
        elif announced:  # (f(t0) and the initial step's probe come first; Euler announces no stages)
            assert value in announced  # k_1 after a jump or a non-FSAL step: the last step's c = 1 stage
    assert attempts > 5


def test_user_defined_tableaus_alternated_each_give_their_own_answer():
    """Per-tableau data belongs to the tableau: new tableau objects, made and dropped in a loop
    (so Python may reuse their ids), and several methods alternated, each give their own result."""
    prob = problems.lotka_volterra()
    makers = [problems.bogacki_shampine, problems.heun_euler, tableaus.Tsit5]
    reference = {}
    for make in makers:
        sol = tinynode.solve(prob.f, prob.y0, prob.tspan, solver=make(), rtol=1e-5, atol=1e-5, saveat=[4.0])
        np.testing.assert_allclose(sol.y[-1], prob.exact(4.0), rtol=1e-2)  # each is a correct method
        reference[make] = sol
    assert len({r.stats["nf"] for r in reference.values()}) == 3  # and they differ
    for _ in range(4):
        for make in makers:
            sol = tinynode.solve(prob.f, prob.y0, prob.tspan, solver=make(), rtol=1e-5, atol=1e-5, saveat=[4.0])
            assert sol.stats == reference[make].stats
            np.testing.assert_array_equal(sol.y, reference[make].y)


@pytest.mark.parametrize("make", [problems.bogacki_shampine, problems.heun_euler])
def test_user_defined_tableaus_reach_their_order(make):
    """Fixed steps halved: the error falls by 2^order (a user's tableau runs through the same step)."""
    prob = problems.linear()
    tableau = make()
    errors = []
    for dt in (0.1, 0.05):
        sol = tinynode.solve(
            prob.f,
            prob.y0,
            prob.tspan,
            solver=tableau,
            controller=tinynode.ConstantStepSize(),
            dt0=dt,
            saveat=[prob.tspan[1]],
        )
        errors.append(np.abs(sol.y[-1] - prob.exact(prob.tspan[1])).max())
    assert math.log2(errors[0] / errors[1]) == pytest.approx(tableau.order, abs=0.25)
