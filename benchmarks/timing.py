"""Timing helpers shared by tinynode's and the peers' overhead measurements
(overhead = time per solve / (nf x time of one bare evaluation)).

Kept free of tinynode imports so that a peer's process never imports tinynode.
"""

import json
import time

import numpy as np


def interleaved_medians(fns, repeat, rounds=10):
    """Median time of each function, measured in alternating blocks (A B A B ...)."""
    times = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            for _ in range(max(repeat // rounds, 1)):
                t0 = time.perf_counter()
                fn()
                times[i].append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


def overhead_row(batch, nf, solve, evaluate, repeat):
    """One row of an overhead table: ``solve()`` against ``nf`` calls of ``evaluate()``, interleaved."""
    def evals():
        for _ in range(nf):
            evaluate()

    t_evals, t_solve = interleaved_medians([evals, solve], repeat)
    return {"batch": batch, "nf": nf, "eval_us": t_evals / nf * 1e6, "solve_us": t_solve * 1e6,
            "overhead": t_solve / t_evals}


def print_table(title, rows, json_path=None):
    print(title)
    print(f"{'batch':>6} {'nf':>4} {'eval (us)':>10} {'solve (us)':>11} {'overhead':>9}")
    for r in rows:
        print(f"{r['batch']:>6} {r['nf']:>4} {r['eval_us']:>10.1f} {r['solve_us']:>11.1f} {r['overhead']:>9.2f}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"title": title, "rows": rows}, f, indent=1)
