"""How close the solver loop and the adjoints are to the cost of the evaluations themselves.

    python -m benchmarks.solver_overhead [--batch 32 128 1024 8192] [--repeat 200]

For the tutorial's vector field (``tinynode.VectorField`` of Dense 20=>10 tanh,
10=>10 tanh, 10=>20 tanh, as ``NeuralODE`` uses it) on a (batch, 20) float32
state, over [0, 1] at rtol = atol = 1e-3, it reports

    forward:  overhead = time per solve / (nf x one bare evaluation of f)
    adjoint:  overhead = time per pullback / (the same calls made bare)

where "one bare evaluation" is the fastest way tinynode has to evaluate f
once: the field bound for a solve (``field.bind(...).into``, the MLP fast
path of ``tinynode.fastmlp``; ``field.freeze(...).into`` in tinynode before
the core redesign, so that a ``--baseline`` run measures the same thing), and
"the same calls" are the backward pass's own counts, made bare on that bound
field: for
InterpolatingAdjoint and DiscreteAdjoint ``nvjp`` VJPs, for GaussAdjoint
``nvjp`` state-only VJPs plus ``nvjp_params`` full ones, for BacksolveAdjoint
``nvjp`` fused value-and-VJP calls. A ratio of 1.0 would mean the loop is
free; every array call it adds per step (stage combinations, copies, the error
norm, interpolating the state) shows up above 1. Timings are medians over
``--repeat`` runs, interleaved with their floors.
"""

import argparse

import numpy as np

import tinynode as tn
from benchmarks.timing import interleaved_medians
from tinynode import nn

TOL = 1e-3
SENSEALGS = {
    "interpolating": tn.InterpolatingAdjoint,
    "gauss": tn.GaussAdjoint,
    "backsolve": tn.BacksolveAdjoint,
    "discrete": tn.DiscreteAdjoint,
}


def tutorial_field(params=None):
    """The tutorial's ODE network as a vector field, and its parameters (``init(0)`` by default)."""
    net = nn.Chain(nn.Dense(20, 10, "tanh"), nn.Dense(10, 10, "tanh"), nn.Dense(10, 20, "tanh"))
    return tn.VectorField(net), (net.init(0) if params is None else params)


def initial_state(batch):
    return np.tanh(np.random.default_rng(0).standard_normal((batch, 20))).astype(np.float32)


def bound_calls(field, params, y0):
    """``(evaluate(), vjp(need_params), value_and_vjp())`` at ``y0`` on the field bound once, outside the timing."""
    v = np.random.default_rng(1).standard_normal(y0.shape).astype(y0.dtype)
    out = np.empty_like(y0)
    if hasattr(field, "bind"):  # tinynode's protocol (tinynode.protocol)
        bound, y, v, out = field.bind(params, y0.shape, y0.dtype), y0.reshape(-1), v.reshape(-1), out.reshape(-1)
        return (
            lambda: bound.into(0.0, y, out),
            lambda need_params=True: bound.vjp(0.0, y, v, need_params),
            lambda: bound.value_and_vjp(0.0, y, v),
        )
    frozen = field.freeze(params, y0.shape, y0.dtype)  # tinynode before the redesign (a --baseline checkout)
    return (
        lambda: frozen.into(0.0, y0, out),
        lambda need_params=True: field.vjp(0.0, y0, params, v, need_params=need_params),
        lambda: field.value_and_vjp(0.0, y0, params, v),
    )


def untiled_evaluation(field, params, y0):
    """Issue 3's floor: the MLP fast path adding its biases by broadcasting, without tiles (in tinynode
    before the redesign that was ``field(t, y, p)``; now ``field(t, y, p)`` is the layer's own path)."""
    if hasattr(field, "bind"):
        bound, x = field.bind(params, y0.shape, y0.dtype), y0.reshape(-1, y0.shape[-1])
        return lambda: bound.forward(x, tiled=False)
    return lambda: field(0.0, y0, params)


def forward_row(field, params, y0, repeat, controller=None):
    def run():
        return tn.solve(field, y0, (0.0, 1.0), params, rtol=TOL, atol=TOL, saveat=[1.0], controller=controller)

    sol = run()
    nf = sol.stats["nf"]

    evaluate = bound_calls(field, params, y0)[0]

    untiled = untiled_evaluation(field, params, y0)

    def floor():  # nf bare evaluations, timed as one block like a solve
        for _ in range(nf):
            evaluate()

    def floor_untiled():
        for _ in range(nf):
            untiled()

    t_floor, t_untiled, t_run = interleaved_medians([floor, floor_untiled, run], repeat)
    return {
        "batch": y0.shape[0],
        "nf": nf,
        "steps": sol.stats["naccept"] + sol.stats["nreject"],
        "eval_us": t_floor / nf * 1e6,
        "solve_us": t_run * 1e6,
        "overhead": t_run / t_floor,
        "overhead_untiled": t_run / t_untiled,  # issue 3's measure
    }


def adjoint_row(field, params, y0, name, repeat):
    sol, pullback = tn.solve_with_vjp(
        field, y0, (0.0, 1.0), params, sensealg=SENSEALGS[name](), rtol=TOL, atol=TOL, saveat=[1.0]
    )
    gy = np.random.default_rng(1).standard_normal(sol.y.shape).astype(y0.dtype)
    stats = pullback(gy)[2]
    _, vjp, value_and_vjp = bound_calls(field, params, y0)
    calls = {  # (the bare call, how many) as the backward pass made them
        "interpolating": [(vjp, stats["nvjp"])],
        "discrete": [(vjp, stats["nvjp"])],
        "gauss": [(lambda: vjp(False), stats["nvjp"]), (vjp, stats.get("nvjp_params", 0))],
        "backsolve": [(value_and_vjp, stats["nvjp"])],
    }[name]

    def floor():
        for call, count in calls:
            for _ in range(count):
                call()

    t_floor, t_run = interleaved_medians([floor, lambda: pullback(gy)], repeat)
    return {
        "sensealg": name,
        "batch": y0.shape[0],
        "calls": sum(c for _, c in calls),
        "steps": stats["naccept"] + stats["nreject"],
        "floor_us": t_floor * 1e6,
        "pullback_us": t_run * 1e6,
        "overhead": t_run / t_floor,
    }


def measure(batches, repeat, params=None):
    """Forward rows and adjoint rows for each batch size."""
    field, params = tutorial_field(params)
    forward, adjoint = [], []
    for batch in batches:
        y0 = initial_state(batch)
        forward.append(forward_row(field, params, y0, repeat))
        adjoint += [adjoint_row(field, params, y0, name, repeat) for name in SENSEALGS]
    return forward, adjoint


def print_rows(forward, adjoint):
    print("forward solve (Tsit5, PI controller)")
    print(f"{'batch':>6} {'nf':>4} {'steps':>5} {'eval (us)':>10} {'solve (us)':>11} {'overhead':>9}")
    for r in forward:
        print(
            f"{r['batch']:>6} {r['nf']:>4} {r['steps']:>5} {r['eval_us']:>10.1f} {r['solve_us']:>11.1f} "
            f"{r['overhead']:>9.2f}"
        )
    print("\nadjoints (the backward pass alone)")
    print(
        f"{'sensealg':>14} {'batch':>6} {'calls':>6} {'steps':>5} {'floor (us)':>11} {'pullback (us)':>14} "
        f"{'overhead':>9}"
    )
    for r in adjoint:
        print(
            f"{r['sensealg']:>14} {r['batch']:>6} {r['calls']:>6} {r['steps']:>5} {r['floor_us']:>11.1f} "
            f"{r['pullback_us']:>14.1f} {r['overhead']:>9.2f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 128, 1024, 8192])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    with tn.backend.blas_threads(1):
        print_rows(*measure(args.batch, args.repeat))


if __name__ == "__main__":
    main()
