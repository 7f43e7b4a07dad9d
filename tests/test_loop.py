"""The adaptive loop alone (tinynode.loop.integrate), driven by a stub step.

The stub stands in for tinynode.step.rk_step: it moves y by h (the exact
solution of dy/dt = 1) and reports an error estimate from a script, so each
test decides which attempts are rejected, produce NaN, and so on, and checks
what the loop does with them: accept or reject, shrink, land on the stop
times, count, and fail with the right error.
"""

import math

import numpy as np
import pytest

from tinynode import controllers, loop, tableaus
from tinynode.errors import MaxStepsExceeded, NonFiniteError
from tinynode.norms import ErrorNorm
from tinynode.protocol import BoundField


def scripted_step(script, attempts):
    """A step whose error norm is ``script[k]`` (as a multiple of the tolerance) on attempt k, 0.1 after."""

    def step(field, tableau, t, h, B, y_new, stage):
        ratio = script[len(attempts)] if len(attempts) < len(script) else 0.1
        attempts.append((t, h))
        y_new[...] = B[0] + h  # dy/dt = 1, exactly
        return np.full_like(B[0], ratio * 1e-3)  # EEst = ratio when atol = 1e-3 and |y| is small

    return step


def run(monkeypatch, script, tspan=(0.0, 1.0), dt0=0.1, **kwargs):
    attempts = []
    monkeypatch.setattr(loop, "rk_step", scripted_step(script, attempts))
    field = BoundField(lambda t, y, p: np.ones_like(y), None, (2,), np.float64)
    y0 = np.zeros(2)
    y1, stats = loop.integrate(
        field,
        y0,
        tspan,
        solver=tableaus.TSIT5,
        controller=controllers.IController(),
        norm=ErrorNorm(0.0, 1e-3, 2, np.float64),
        dt0=dt0,
        **kwargs,
    )
    return y1, stats, attempts


def test_rejected_attempts_are_retried_smaller_and_counted(monkeypatch):
    y1, stats, attempts = run(monkeypatch, [5.0, 5.0, 5.0])
    assert stats["nreject"] == 3 and stats["naccept"] == len(attempts) - 3
    assert [t for t, _ in attempts[:4]] == [0.0] * 4  # a rejected step does not move t
    assert attempts[1][1] < attempts[0][1] and attempts[2][1] < attempts[1][1]  # and shrinks h
    np.testing.assert_allclose(y1, 1.0, rtol=1e-14)  # every accepted step moved y by exactly its h
    assert stats["nf"] == 1 + (tableaus.TSIT5.stages - 1) * len(attempts)


def test_the_steps_land_exactly_on_the_stop_times_and_t1(monkeypatch):
    seen = []

    def on_tstop(t, y):
        seen.append((t, y.copy()))
        return False

    y1, stats, attempts = run(
        monkeypatch, [], tspan=(0.0, 2.0), dt0=0.3, tstops=[0.5, 1.25, 7.0, -1.0], on_tstop=on_tstop
    )
    assert [t for t, _ in seen] == [0.5, 1.25]  # stops outside the span are ignored; t1 is not a tstop
    for t, y in seen:
        np.testing.assert_allclose(y, t, rtol=1e-14)
    ends = [t + h for t, h in attempts]
    assert any(abs(e - 0.5) < 1e-15 for e in ends) and attempts[-1][0] + attempts[-1][1] == pytest.approx(2.0)
    np.testing.assert_allclose(y1, 2.0, rtol=1e-14)


def test_backward_in_time(monkeypatch):
    y1, stats, attempts = run(monkeypatch, [5.0], tspan=(1.0, -1.0), dt0=0.25)
    assert all(h < 0 for _, h in attempts) and stats["nreject"] == 1
    np.testing.assert_allclose(y1, -2.0, rtol=1e-14)


def test_a_jump_at_a_stop_time_reevaluates_k1(monkeypatch):
    def on_tstop(t, y):
        y += 10.0
        return True

    y1, stats, attempts = run(monkeypatch, [], dt0=0.2, tstops=[0.5], on_tstop=on_tstop)
    np.testing.assert_allclose(y1, 11.0, rtol=1e-14)
    assert stats["nf"] == 2 + (tableaus.TSIT5.stages - 1) * len(attempts)  # f(t0) and k_1 after the jump


def test_a_nan_step_is_retried_smaller_then_diagnosed(monkeypatch):
    y1, stats, attempts = run(monkeypatch, [math.nan] * 3)
    assert stats["nreject"] == 3 and attempts[1][1] == pytest.approx(0.2 * attempts[0][1])  # controller.qmin
    with pytest.raises(NonFiniteError, match="after 11 tries"):
        run(monkeypatch, [math.nan] * (loop.MAX_NONFINITE_RETRIES + 1))


def test_max_steps_counts_every_attempt(monkeypatch):
    with pytest.raises(MaxStepsExceeded, match=r"max_steps = 7 step attempts \(0 accepted, 7 rejected\)"):
        run(monkeypatch, [1.5] * 100, max_steps=7)


def test_on_step_sees_every_accepted_step_once(monkeypatch):
    log = []
    y1, stats, attempts = run(
        monkeypatch, [5.0, 0.5, 5.0], dt0=0.3, on_step=lambda t, t_new, h, B, y_new: log.append((t, t_new, y_new[0]))
    )
    assert len(log) == stats["naccept"]
    assert log[0][0] == 0.0 and log[-1][1] == 1.0
    assert all(a[1] == b[0] for a, b in zip(log, log[1:]))  # contiguous
    assert all(y == pytest.approx(t_new) for _, t_new, y in log)
