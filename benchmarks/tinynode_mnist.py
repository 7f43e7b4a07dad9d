"""tinynode on the comparison workload (one configuration per process; see benchmarks/workload.py).

    python -m benchmarks.tinynode_mnist --data DATA.npz --out RESULT.json --config interpolating

The model is ``tinynode.models.tutorial_model(sensealg=..., controller=...)``
and the loop is ``tinynode.train.fit`` itself (the CLI's loop): the batches
come from ``DataLoader(shuffle=True, seed=0)``, whose permutations
``workload.epoch_batches`` reproduces for the peers. Counts per epoch: forward
evaluations of the vector field, and backward VJPs plus evaluations.
"""

import os
import time

T_START = time.perf_counter()

import tinynode as tn  # noqa: E402
from benchmarks import workload as wl  # noqa: E402
from tinynode.data import DataLoader  # noqa: E402
from tinynode.models import tutorial_model  # noqa: E402
from tinynode.train import fit  # noqa: E402

CONFIGS = {
    "interpolating": (tn.InterpolatingAdjoint, tn.PIController),
    "gauss": (tn.GaussAdjoint, tn.PIController),
    "backsolve": (tn.BacksolveAdjoint, tn.PIController),
    "discrete": (tn.DiscreteAdjoint, tn.PIController),
    "interpolating-i": (tn.InterpolatingAdjoint, tn.IController),
}


def main(argv=None):
    args = wl.worker_args(argv, CONFIGS)
    sensealg, controller = CONFIGS[args.config]
    rec = wl.Recorder(
        "tinynode",
        args.config,
        T_START,
        wl.versions_of("tinynode"),
        notes=f"Tsit5, {controller.__name__}, {sensealg.__name__}, tinynode.train.fit",
    )
    d = wl.load(args.data)
    model = tutorial_model(sensealg=sensealg(), controller=controller(), rtol=wl.RTOL, atol=wl.ATOL)
    params = d["flat_params"].copy()
    opt = tn.Adam(wl.LR)
    state = opt.init(params)
    train = DataLoader(d["x_train"], d["y_train"], batch_size=wl.BATCH, shuffle=True, seed=wl.SEED)
    eval_train = DataLoader(d["x_train"], d["y_train"], batch_size=wl.BATCH)
    eval_test = DataLoader(d["x_test"], d["y_test"], batch_size=wl.BATCH)
    fit(
        model,
        params,
        opt,
        state,
        train,
        eval_train,
        eval_test,
        epochs=args.epochs,
        out=None,
        progress=False,
        on_epoch=lambda r: rec.epoch(
            r.epoch,
            r.time,
            r.loss,
            r.train_accuracy,
            r.test_accuracy,
            r.forward_nf,
            r.backward_nvjp + r.backward_nf,
            bwd_vjp=r.backward_nvjp,
            bwd_nf=r.backward_nf,
        ),
    )
    rec.write(
        args.out,
        nfe_method="counted by tinynode (NeuralODE.counts): forward evaluations; backward VJPs + evaluations",
        tinynode_from=tinynode_from(),
    )


def tinynode_from():
    """The real folder tinynode was imported from (the runner checks it: this tree's, or --baseline's)."""
    return os.path.dirname(os.path.realpath(tn.__file__))


def overhead(argv):
    """The forward-solve and adjoint overheads on the workload's ODE weights (benchmarks.solver_overhead)."""
    import json

    import numpy as np

    from benchmarks import solver_overhead
    from benchmarks.timing import print_table

    args = wl.overhead_args(argv)
    d = wl.load(args.data)
    params = np.concatenate([d[f"{k}{i}"].ravel() for i in (1, 2, 3) for k in ("W", "b")])
    with tn.backend.blas_threads(1):  # as tinynode.train.fit runs
        forward, adjoint = solver_overhead.measure(args.batch, args.repeat, params)
    title = "tinynode Tsit5 + PIController (tinynode.solve on tinynode.VectorField, as benchmarks.solver_overhead)"
    print_table(title, forward)
    solver_overhead.print_rows([], adjoint)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"title": title, "rows": forward, "adjoint_rows": adjoint, "tinynode_from": tinynode_from()},
                f,
                indent=1,
            )


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "overhead":
        overhead(sys.argv[2:])
    else:
        main()
