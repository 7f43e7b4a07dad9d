"""How close the solver loop is to the cost of the evaluations themselves.

    python -m benchmarks.solver_overhead [--batch 32 128 1024] [--repeat 200]

For the tutorial's vector field (Dense 20=>10 tanh, 10=>10 tanh, 10=>20 tanh)
on a (batch, 20) float32 state, integrated over [0, 1] at rtol = atol = 1e-3,
it reports

    overhead = time per solve / (nf * time of one bare evaluation of f)

A ratio of 1.0 would mean the loop is free; every array call the loop adds per
step (stage combinations, copies, the error norm) shows up above 1. Timings
are medians over ``--repeat`` runs.
"""

import argparse
import time

import numpy as np

import tinynode
from tinynode import nn


def tutorial_field():
    net = nn.Chain(nn.Dense(20, 10, "tanh"), nn.Dense(10, 10, "tanh"), nn.Dense(10, 20, "tanh"))
    params = net.init(0)

    def f(t, y, p):
        return net(p, y)

    return f, params


def interleaved_medians(fns, repeat, rounds=10):
    """Median time of each function, measured in alternating blocks (A B A B ...).

    The machine is noisy; alternating keeps a slow spell from landing on one side only.
    """
    times = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            for _ in range(max(repeat // rounds, 1)):
                t0 = time.perf_counter()
                fn()
                times[i].append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


def measure(batch, repeat, controller=None):
    f, params = tutorial_field()
    rng = np.random.default_rng(0)
    y0 = np.tanh(rng.standard_normal((batch, 20))).astype(np.float32)

    def run():
        return tinynode.solve(f, y0, (0.0, 1.0), params, rtol=1e-3, atol=1e-3, saveat=[1.0],
                              controller=controller)

    sol = run()
    nf = sol.stats["nf"]

    def evals():  # nf bare evaluations, timed as one block like a solve
        for _ in range(nf):
            f(0.0, y0, params)

    t_evals, t_solve = interleaved_medians([evals, run], repeat)
    return {"batch": batch, "nf": nf, "steps": sol.stats["naccept"] + sol.stats["nreject"],
            "eval_us": t_evals / nf * 1e6, "solve_us": t_solve * 1e6, "overhead": t_solve / t_evals}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 128, 1024, 8192])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    print(f"{'batch':>6} {'nf':>4} {'steps':>5} {'eval (us)':>10} {'solve (us)':>11} {'overhead':>9}")
    for batch in args.batch:
        r = measure(batch, args.repeat)
        print(f"{r['batch']:>6} {r['nf']:>4} {r['steps']:>5} {r['eval_us']:>10.1f} {r['solve_us']:>11.1f} "
              f"{r['overhead']:>9.2f}")


if __name__ == "__main__":
    main()
