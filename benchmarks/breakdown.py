"""Where a training batch's time goes: tinynode's per-batch budget on the tutorial's workload.

    python -m benchmarks.breakdown                    # N = 1500, PI controller, InterpolatingAdjoint
    python -m benchmarks.breakdown --controller i --json out.json

Trains the tutorial's model with ``tinynode.train.fit`` (9 epochs, the bundled
sample, one BLAS thread) while timing, per training batch, the NeuralODE's
forward solve, its backward pass (the adjoint) and everything else (the two
dense layers, the loss, Adam, the batch itself), with the vector-field calls
and steps behind them. Then it times the calls those passes are made of, bare,
at batch 128: an evaluation, a VJP from scratch, the stacked linearization of
a backward step and a VJP through it. Steady epochs only (the first is left
out). This is the profile behind the "Reading the numbers" section of
docs/benchmarks.md: it says what the steady epoch is made of and so how far
the NumPy calls it needs are from any target.
"""

import argparse
import json
import statistics
import time

import numpy as np

import tinynode as tn
from tinynode import neural_ode
from tinynode.backend import blas_threads
from tinynode.data import DataLoader, load_sample, train_test_split
from tinynode.models import tutorial_model
from tinynode.train import fit


def _timed(fn, store):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        store.append(time.perf_counter() - t0)
        return out

    return wrapper


def per_batch(n, controller, epochs=9):
    """Median per-batch times (seconds) over the steady epochs, and the counts per batch."""
    images, labels = load_sample()  # the benchmark's data: the first n of the bundled sample
    (xtr, ytr), (xte, yte) = train_test_split(images[:n], labels[:n])
    model = tutorial_model(controller=tn.IController() if controller == "i" else tn.PIController())
    params = model.init(0)
    opt = tn.Adam(0.001)
    state = opt.init(params)
    fwd, bwd, epoch_times, batches = [], [], [], []
    orig_forward, orig_backward = neural_ode.NeuralODE.forward, neural_ode.NeuralODE.backward
    neural_ode.NeuralODE.forward = _timed(orig_forward, fwd)
    neural_ode.NeuralODE.backward = _timed(orig_backward, bwd)
    counts = []
    train = DataLoader(xtr, ytr, batch_size=128, shuffle=True, seed=0)

    def on_epoch(record):
        epoch_times.append(record.time)
        batches.append(len(train))
        counts.append((record.forward_nf, record.backward_nvjp + record.backward_nf))

    try:
        fit(
            model,
            params,
            opt,
            state,
            train,
            DataLoader(xtr, ytr, 128),
            DataLoader(xte, yte, 128),
            epochs=epochs,
            out=None,
            progress=False,
            on_epoch=on_epoch,
        )
    finally:
        neural_ode.NeuralODE.forward, neural_ode.NeuralODE.backward = orig_forward, orig_backward
    nb = batches[0]
    steady = slice(nb, None)  # leave out the first epoch's batches
    batch_s = statistics.median(epoch_times[1:]) / nb
    f = statistics.median(fwd[steady])
    b = statistics.median(bwd[steady])
    fwd_nf = statistics.median(c[0] for c in counts[1:]) / nb
    bwd_calls = statistics.median(c[1] for c in counts[1:]) / nb
    return {
        "batch_s": batch_s,
        "ode_forward_s": f,
        "ode_backward_s": b,
        "rest_s": batch_s - f - b,
        "forward_evaluations": fwd_nf,
        "backward_vjps": bwd_calls,
        "steady_epoch_s": batch_s * nb,
        "batches_per_epoch": nb,
    }


def call_costs(repeat=3000):
    """Bare costs (seconds) of the calls a batch is made of, at the tutorial's batch of 128."""
    model = tutorial_model()
    params = model.init(0)
    ode = model.layers[2]
    p = model.params_of(params, 2)
    rng = np.random.default_rng(0)
    y = np.tanh(0.5 * rng.standard_normal((128, 20))).astype(np.float32)
    v = (0.01 * rng.standard_normal((128, 20))).astype(np.float32)
    field = ode.field
    bound = field.bind(p, y.shape, y.dtype)  # the MLP fast path, as one solve uses it (tinynode.fastmlp)
    out = np.empty_like(y).reshape(-1)
    ys = np.stack([y.reshape(-1)] * 6)
    lin = bound.linearize(ys, sign=-1.0)
    grads = np.empty_like(p)

    def t(fn):
        fn()
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        return (time.perf_counter() - t0) / repeat

    # The rest of a batch, bare: the two dense layers forward and backward, the loss, Adam, the batch.
    from tinynode.losses import logit_cross_entropy_grad

    dense_in, dense_out = model.layers[1], model.layers[3]
    p_in, p_out = model.params_of(params, 1), model.params_of(params, 3)
    images = (rng.random((1500, 28, 28)) * 255).astype(np.uint8)
    batches = iter(())
    loader = DataLoader(images, np.zeros(1500, np.uint8), batch_size=128, drop_last=True)
    g_all, opt = np.empty_like(params), tn.Adam(0.001)
    opt_state = opt.init(params.copy())
    params_copy = params.copy()

    def rest():
        nonlocal batches
        x = next(batches, None)
        if x is None:
            batches = iter(loader)
            x = next(batches)
        h, ctx_in = dense_in.forward(p_in, x[0].reshape(128, -1))
        logits, ctx_out = dense_out.forward(p_out, h)
        _, g_logits = logit_cross_entropy_grad(logits, x[1])
        model.params_of(g_all, 3)[...] = dense_out.backward(p_out, ctx_out, g_logits)[1]
        model.params_of(g_all, 1)[...] = dense_in.backward(p_in, ctx_in, h, need_gx=False)[1]
        opt.step(params_copy, g_all, opt_state)

    return {
        "evaluation_s": t(lambda: bound.into(0.0, y.reshape(-1), out)),
        "rest_bare_s": t(rest),
        "evaluation_unfrozen_s": t(lambda: field(0.0, y, p)),
        "vjp_from_scratch_s": t(lambda: field.vjp(0.0, y, p, v)),
        "linearize_6_points_s": t(lambda: bound.linearize(ys, sign=-1.0)),
        "vjp_through_linearization_s": t(lambda: lin.vjp(2, v.reshape(-1), out=out, gparams=grads)),
        "numpy_add_128x20_s": t(lambda: np.add(y, y, out=out.reshape(y.shape))),
    }


def main(argv=None):
    """Print the budget and the bare calls; ``--json`` also writes them (benchmarks.compare reads it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1500, help="MNIST sample size (0.9 of it trains)")
    parser.add_argument("--controller", choices=["pi", "i"], default="pi")
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--repeat", type=int, default=3000, help="timed repetitions of each bare call")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args(argv)
    with blas_threads(1):
        budget = per_batch(args.n, args.controller, args.epochs)
        costs = call_costs(args.repeat)
    us = 1e6
    print(
        f"tinynode, InterpolatingAdjoint, {args.controller.upper()} controller, N = {args.n}: "
        f"steady epoch {budget['steady_epoch_s']:.4f} s = {budget['batches_per_epoch']} batches of "
        f"{budget['batch_s'] * us:.0f} us"
    )
    print(
        f"  ODE forward solve  {budget['ode_forward_s'] * us:6.0f} us  ({budget['forward_evaluations']:.1f} "
        "evaluations)"
    )
    print(f"  ODE backward pass  {budget['ode_backward_s'] * us:6.0f} us  ({budget['backward_vjps']:.1f} VJPs)")
    print(f"  everything else    {budget['rest_s'] * us:6.0f} us  (dense layers, loss, Adam, the batch)")
    print("bare calls at batch 128:")
    for key, value in costs.items():
        print(f"  {key[:-2].replace('_', ' '):32s} {value * us:6.1f} us")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"budget": budget, "calls": costs, "controller": args.controller, "n": args.n}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
