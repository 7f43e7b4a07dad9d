"""diffrax on the comparison workload (one configuration per process; see benchmarks/workload.py).

    python -m benchmarks.peers.diffrax_mnist --data DATA.npz --out RESULT.json --config backsolve
    python -m benchmarks.peers.diffrax_mnist count --data DATA.npz --out COUNT.json --config backsolve
    python -m benchmarks.peers.diffrax_mnist overhead --batch 32 128 1024 8192

Tsit5 + ``PIDController(rtol=1e-3, atol=1e-3)`` (diffrax's default
coefficients: a pure I controller), ``dt0=None`` (Hairer's initial step),
``SaveAt(t1=True)``, the batch as one (B, 20) state (shared steps), with
``BacksolveAdjoint()`` or ``RecursiveCheckpointAdjoint()`` (diffrax's default).
The ODE's parameters go in ``args`` (what BacksolveAdjoint differentiates);
the dense layers outside the ODE do not. The whole train step (forward,
gradient, optax Adam) is one ``jax.jit``; JAX on the CPU. The first epoch
includes compiling the train step for the two batch shapes (128 and the last,
partial batch); evaluation compiles its own shapes, outside the epoch time.

NFE in the timed run: diffrax reports no evaluation counts, so the forward
count is computed from ``sol.stats["num_steps"]`` (all steps, accepted and
rejected) as 6 x num_steps + 1 per solve, the usual formula for FSAL Runge-Kutta methods; the
backward count is not reported by diffrax (#195) and is left empty. The
``count`` subcommand measures the real counts once, untimed: it runs one
epoch with a ``jax.debug.callback`` in the vector field that counts its
evaluations, separately for the forward solve (inference) and for the
whole train step (forward + backward).
"""

import os
import sys
import time

T_START = time.perf_counter()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import diffrax  # noqa: E402
import equinox  # noqa: E402,F401  (imported by diffrax; here for its version)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from benchmarks import workload as wl  # noqa: E402

CONFIGS = ("backsolve", "recursive")
ODE_KEYS = ("W1", "b1", "W2", "b2", "W3", "b3")


def make_vf(counter=None):
    def vf(t, y, p):
        if counter is not None:
            jax.debug.callback(counter, ordered=False)
        h = jnp.tanh(y @ p["W1"].T + p["b1"])
        h = jnp.tanh(h @ p["W2"].T + p["b2"])
        return jnp.tanh(h @ p["W3"].T + p["b3"])

    return vf


def make_model(config, counter=None):
    adjoint = diffrax.BacksolveAdjoint() if config == "backsolve" else diffrax.RecursiveCheckpointAdjoint()
    term = diffrax.ODETerm(make_vf(counter))
    solver = diffrax.Tsit5()
    controller = diffrax.PIDController(rtol=wl.RTOL, atol=wl.ATOL)
    saveat = diffrax.SaveAt(t1=True)

    def forward(p, x):
        h = jnp.tanh(x @ p["W0"].T + p["b0"])
        sol = diffrax.diffeqsolve(
            term,
            solver,
            0.0,
            1.0,
            None,
            h,
            args={k: p[k] for k in ODE_KEYS},
            stepsize_controller=controller,
            saveat=saveat,
            adjoint=adjoint,
        )
        return sol.ys[-1] @ p["W4"].T + p["b4"], sol.stats["num_steps"]

    return forward


def build(config, counter=None):
    forward = make_model(config, counter)
    opt = optax.adam(wl.LR)

    def loss_fn(p, x, y):
        logits, nsteps = forward(p, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), nsteps

    @jax.jit
    def train_step(p, opt_state, x, y):
        (loss, nsteps), g = jax.value_and_grad(loss_fn, has_aux=True)(p, x, y)
        updates, opt_state = opt.update(g, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss, nsteps

    @jax.jit
    def predict(p, x):
        return forward(p, x)[0].argmax(-1)

    return opt, train_step, predict


def accuracy(predict, p, x, y):
    correct = 0
    for rows in wl.eval_batches(len(y)):
        correct += int((np.asarray(predict(p, x[rows])) == y[rows]).sum())
    return correct / len(y)


def load(d):
    p = {f"{k}{i}": jnp.asarray(d[f"{k}{i}"]) for i in range(5) for k in ("W", "b")}
    x_train, x_test = wl.images_to_float(d["x_train"]), wl.images_to_float(d["x_test"])
    return p, x_train, d["y_train"].astype(np.int32), x_test, d["y_test"].astype(np.int32)


def train(args):
    adjoint = "BacksolveAdjoint" if args.config == "backsolve" else "RecursiveCheckpointAdjoint"
    rec = wl.Recorder(
        "diffrax",
        args.config,
        T_START,
        wl.versions_of("jax", "jaxlib", "diffrax", "equinox", "optax"),
        notes=f"Tsit5, PIDController (I), {adjoint}, jit, {jax.default_backend()}",
    )
    d = wl.load(args.data)
    p, x_train, y_train, x_test, y_test = load(d)
    opt, train_step, predict = build(args.config)
    opt_state = opt.init(p)
    for epoch in range(args.epochs):
        losses, nsolves, nsteps = [], 0, 0
        t0 = time.perf_counter()
        for idx in wl.epoch_batches(len(y_train), epoch):
            p, opt_state, loss, ns = train_step(p, opt_state, x_train[idx], y_train[idx])
            losses.append(float(loss))
            nsteps += int(ns)
            nsolves += 1
        elapsed = time.perf_counter() - t0
        rec.epoch(
            epoch + 1,
            elapsed,
            np.mean(losses),
            accuracy(predict, p, x_train, y_train),
            accuracy(predict, p, x_test, y_test),
            6 * nsteps + nsolves,
            None,
            num_steps=nsteps,
        )
    rec.write(
        args.out,
        nfe_method="forward: 6 x num_steps + 1 per solve, from sol.stats (not counted); "
        "backward: not reported by diffrax",
    )


def count(args):
    """One epoch with a counting host callback in the vector field (untimed): the real NFE."""
    import json

    calls = [0]

    def counter():
        calls[0] += 1

    d = wl.load(args.data)
    p, x_train, y_train, _, _ = load(d)
    opt, train_step, predict = build(args.config, counter)
    opt_state = opt.init(p)
    rows = []
    for idx in wl.epoch_batches(len(y_train), 0):
        x, y = x_train[idx], y_train[idx]
        calls[0] = 0
        predict(p, x).block_until_ready()
        jax.effects_barrier()
        fwd = calls[0]
        calls[0] = 0
        p, opt_state, loss, ns = train_step(p, opt_state, x, y)
        loss.block_until_ready()
        jax.effects_barrier()
        rows.append(
            {
                "num_steps": int(ns),
                "fwd_counted": fwd,
                "train_step_counted": calls[0],
                "bwd_counted": calls[0] - fwd,
                "fwd_formula": 6 * int(ns) + 1,
            }
        )
    out = {
        "system": "diffrax",
        "config": args.config,
        "batches": rows,
        "fwd": sum(r["fwd_counted"] for r in rows),
        "bwd": sum(r["bwd_counted"] for r in rows),
        "fwd_formula": sum(r["fwd_formula"] for r in rows),
        "method": "jax.debug.callback in the vector field, one epoch (epoch 1's batches), untimed; fwd = "
        "calls during a jitted inference solve on the same batch before the step, bwd = calls "
        "during the jitted train step minus fwd (assumes the train step's forward solve takes the "
        "same steps as the inference solve)",
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


def bare_evaluations(vf, nf):
    """A jitted function making ``nf`` dependent bare evaluations of ``vf`` in one compiled loop."""

    @jax.jit
    def evals(y0, p):
        return jax.lax.fori_loop(0, nf, lambda i, y: vf(0.0, y, p), y0)

    return evals


def overhead(argv):
    from benchmarks.timing import interleaved_medians, print_table

    args = wl.overhead_args(argv)
    d = wl.load(args.data)
    ps = {k: jnp.asarray(d[k]) for k in ODE_KEYS}
    vf = make_vf()
    term = diffrax.ODETerm(vf)
    rows = []
    for batch in args.batch:
        y0 = jnp.asarray(wl.overhead_state(batch))

        @jax.jit
        def solve(y0, p):
            sol = diffrax.diffeqsolve(
                term,
                diffrax.Tsit5(),
                0.0,
                1.0,
                None,
                y0,
                args=p,
                stepsize_controller=diffrax.PIDController(rtol=wl.RTOL, atol=wl.ATOL),
                saveat=diffrax.SaveAt(t1=True),
            )
            return sol.ys, sol.stats["num_steps"]

        nf = 6 * int(solve(y0, ps)[1]) + 1

        evals = bare_evaluations(vf, nf)
        evals(y0, ps).block_until_ready()
        t_evals, t_solve = interleaved_medians(
            [
                lambda y0=y0, evals=evals: evals(y0, ps).block_until_ready(),
                lambda y0=y0, solve=solve: solve(y0, ps)[0].block_until_ready(),
            ],
            args.repeat,
        )
        rows.append(
            {
                "batch": batch,
                "nf": nf,
                "eval_us": t_evals / nf * 1e6,
                "solve_us": t_solve * 1e6,
                "overhead": t_solve / t_evals,
            }
        )
    print_table(
        "diffrax Tsit5 + PIDController (jit; floor: nf evaluations in one jitted fori_loop; nf = 6 num_steps + 1)",
        rows,
        args.json,
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "overhead":
        overhead(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "count":
        count(wl.worker_args(sys.argv[2:], CONFIGS))
    else:
        train(wl.worker_args(configs=CONFIGS))
