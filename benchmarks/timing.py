"""Timing helpers shared by tinynode's and the peers' overhead measurements
(overhead = time per solve / (nf x time of one bare evaluation)).

Kept free of tinynode imports so that a peer's process never imports tinynode.
"""

import json
import os
import subprocess
import sys
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
    return {
        "batch": batch,
        "nf": nf,
        "eval_us": t_evals / nf * 1e6,
        "solve_us": t_solve * 1e6,
        "overhead": t_solve / t_evals,
    }


def print_table(title, rows, json_path=None):
    print(title)
    print(f"{'batch':>6} {'nf':>4} {'eval (us)':>10} {'solve (us)':>11} {'overhead':>9}")
    for r in rows:
        print(f"{r['batch']:>6} {r['nf']:>4} {r['eval_us']:>10.1f} {r['solve_us']:>11.1f} {r['overhead']:>9.2f}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"title": title, "rows": rows}, f, indent=1)


#: Variables that pin OpenBLAS to one kernel. Some machines set them because old OpenBLAS
#: builds computed wrong results on their processors; a current NumPy's OpenBLAS is then
#: held to an older kernel (here Haswell instead of SkylakeX: a third slower for the
#: tutorial's 784 x 20 layer). torch (MKL/oneDNN) and JAX (XLA/Eigen) do not read them,
#: so they would slow NumPy alone: the workers run without them unless told to keep them.
BLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
KEEP_BLAS_PINS = False


def worker_env(root):
    """The environment of a benchmark worker: tinynode's repository on the path, no BLAS pins."""
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if not KEEP_BLAS_PINS:
        for name in BLAS_PINS:
            env.pop(name, None)
    return env


def blas_info(root):
    """NumPy's BLAS as a worker sees it (library, version, the kernel it chose), or None."""
    code = (
        "import json, numpy, threadpoolctl; "
        "print(json.dumps([i for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']))"
    )
    try:
        res = subprocess.run(
            [sys.executable, "-c", code], env=worker_env(root), capture_output=True, text=True, timeout=60
        )
        info = json.loads(res.stdout.strip().splitlines()[-1])[0]
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None
    pins = {name: os.environ[name] for name in BLAS_PINS if name in os.environ}
    return {
        "library": info.get("internal_api"),
        "version": info.get("version"),
        "kernel": info.get("architecture"),
        "pins_set": pins,
        "pins_kept": KEEP_BLAS_PINS,
    }
