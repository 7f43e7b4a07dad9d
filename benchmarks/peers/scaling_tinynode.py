"""tinynode's worker for the scaling benchmark (benchmarks/scaling.py; protocol in scaling_common.py).

    python -m benchmarks.peers.scaling_tinynode --config default|tutorial

``default``: ``tinynode.solve_with_vjp`` with no options at all (its automatic
choices: DiscreteAdjoint, IController, BLAS threads by size; the threads it
chose are reported); ``tutorial``: the tutorial's choices (``PIController()``,
``InterpolatingAdjoint()``) on 1 BLAS thread, the defaults before issue 15.
Tsit5, rtol = atol = 1e-3, ``saveat=[1.0]``, gradient = ``pullback(ones)``.
Counts: ``sol.stats['nf']`` and the pullback's stats. Also answers
``{"cmd": "machine"}``: NumPy's float32 matrix-multiply rate (2048 x 2048) with 1 and 2 BLAS threads.
"""

import os
import time

import numpy as np

import tinynode as tn
from benchmarks.peers.scaling_common import serve

CONFIGS = {
    "default": ({}, None),  # None: no pin, the library chooses
    "tutorial": ({"controller": tn.PIController, "sensealg": tn.InterpolatingAdjoint}, 1),
}


def setup(d, config):
    options, threads = CONFIGS[config]
    D, H = d["W1"].shape[1], d["W1"].shape[0]
    net = tn.nn.Chain(tn.nn.Dense(D, H, "tanh"), tn.nn.Dense(H, H, "tanh"), tn.nn.Dense(H, D, "tanh"))
    params = net.init(0)
    layers = net.unflatten(params)["layers"]
    for i in range(3):
        layers[i]["weight"][...] = d[f"W{i + 1}"]
        layers[i]["bias"][...] = d[f"b{i + 1}"]
    field, y0 = tn.VectorField(net), d["y0"]
    kw = {k: v() for k, v in options.items()}

    def grad():
        sol, pullback = tn.solve_with_vjp(field, y0, (0, 1), params, rtol=1e-3, atol=1e-3, saveat=[1.0], **kw)
        _, _, stats = pullback(np.ones_like(sol.y))
        return {
            "nf": int(sol.stats["nf"]),
            "nvjp": int(stats["nvjp"]),
            "nvjp_params": int(stats.get("nvjp_params", 0)),
            "bwd_nf": int(stats.get("nf", 0)) + int(stats.get("nf_resolve", 0)),
            "steps_fwd": int(sol.stats["naccept"] + sol.stats["nreject"]),
            "steps_bwd": int(stats["naccept"] + stats["nreject"]),
            "blas_threads": stats["choices"]["blas_threads"],
        }

    controller = options.get("controller", tn.IController).__name__
    sensealg = options.get("sensealg", tn.DiscreteAdjoint).__name__
    threads = "BLAS threads by size" if threads is None else f"{threads} BLAS thread(s)"
    notes = f"Tsit5, {controller}, {sensealg}, {threads}, tinynode from {os.path.dirname(tn.__file__)}"
    return grad, notes


def context(config):
    return tn.backend.blas_threads(CONFIGS[config][1])


def machine(req):
    """float32 GFLOP/s of numpy.dot on two 2048 x 2048 matrices, with 1 and 2 BLAS threads (median of 5)."""
    n = 2048
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    out = {}
    for threads in (1, 2):
        with tn.backend.blas_threads(threads):
            np.dot(a, b)
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                np.dot(a, b)
                times.append(time.perf_counter() - t0)
        out[f"gflops_{threads}t"] = 2 * n**3 / float(np.median(times)) / 1e9
    return out


if __name__ == "__main__":
    serve(setup, extra={"machine": machine}, context=context)
