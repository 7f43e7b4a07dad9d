"""What each gradient method costs on the tutorial's Neural ODE block.

    python -m benchmarks.adjoint_costs [--batch 128] [--repeat 30]

For the ODE block of the tutorial (Dense 20=>10=>10=>20, tanh, float32) on a
(batch, 20) state over [0, 1], it reports per sensealg: time per gradient
(forward solve + pullback, median), forward evaluations, backward VJPs and
evaluations, and peak memory (tracemalloc: every NumPy allocation). Then it
tightens the tolerance to make the solve take more steps and shows how peak
memory grows with the number of steps: flat for BacksolveAdjoint, linear for
the methods that keep every step.
"""

import argparse
import time
import tracemalloc

import numpy as np

import tinynode as tn
from tinynode import nn

METHODS = {
    "interpolating": tn.InterpolatingAdjoint(),
    "interpolating+checkpointing": tn.InterpolatingAdjoint(checkpointing=True),
    "interpolating+seminorm": tn.InterpolatingAdjoint(seminorm=True),
    "gauss": tn.GaussAdjoint(),
    "backsolve": tn.BacksolveAdjoint(),
    "discrete": tn.DiscreteAdjoint(),
}


def setup(batch):
    net = nn.Chain(nn.Dense(20, 10, "tanh"), nn.Dense(10, 10, "tanh"), nn.Dense(10, 20, "tanh"))
    rng = np.random.default_rng(0)
    y0 = np.tanh(rng.standard_normal((batch, 20))).astype(np.float32)
    gy = (rng.standard_normal((1, batch, 20)) / batch).astype(np.float32)
    return tn.VectorField(net), net.init(0), y0, gy


def gradient(field, params, y0, gy, alg, tol):
    sol, pullback = tn.solve_with_vjp(field, y0, (0.0, 1.0), params, sensealg=alg, saveat=[1.0], rtol=tol, atol=tol)
    _, _, stats = pullback(gy)
    return sol.stats, stats


def peak_memory(fn):
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    field, params, y0, gy = setup(args.batch)
    print(f"Tutorial ODE block, batch {args.batch}, float32, rtol = atol = 1e-3")
    print(f"{'method':<28} {'ms/grad':>8} {'fwd nf':>7} {'bwd vjp':>8} {'bwd nf':>7} {'steps f/b':>10} {'peak KiB':>9}")
    for name, alg in METHODS.items():
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fstats, bstats = gradient(field, params, y0, gy, alg, 1e-3)
            times.append(time.perf_counter() - t0)
        peak = peak_memory(lambda alg=alg: gradient(field, params, y0, gy, alg, 1e-3))
        bwd_nf = bstats.get("nf", 0) + bstats.get("nf_resolve", 0)
        bwd_vjp = bstats["nvjp"] + bstats.get("nvjp_params", 0)
        print(
            f"{name:<28} {np.median(times) * 1e3:>8.2f} {fstats['nf']:>7} {bwd_vjp:>8} {bwd_nf:>7} "
            f"{fstats['naccept']:>4}/{bstats['naccept']:<5} {peak / 1024:>9.0f}"
        )
    print()
    print("Peak memory (KiB) as the number of forward steps grows (tighter tolerances):")
    tols = [1e-3, 1e-4, 1e-5, 1e-6]
    steps = [gradient(field, params, y0, gy, METHODS["discrete"], tol)[0]["naccept"] for tol in tols]
    print(f"{'method':<28} " + " ".join(f"{s:>7} st" for s in steps))
    for name, alg in METHODS.items():
        peaks = [peak_memory(lambda alg=alg, tol=tol: gradient(field, params, y0, gy, alg, tol)) / 1024 for tol in tols]
        print(f"{name:<28} " + " ".join(f"{p:>10.0f}" for p in peaks))


if __name__ == "__main__":
    main()
