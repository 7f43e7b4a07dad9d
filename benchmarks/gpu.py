"""tinynode on a GPU against its own CPU path and against torchdiffeq and diffrax on the same GPU.

    python -m benchmarks.gpu                       # on a machine with a CUDA GPU
    python -m benchmarks.gpu --device cpu --quick  # the same code paths on the CPU (a smoke test)

The tutorial's model and training step (Flatten, Dense(784=>20, tanh), the
NeuralODE 20=>10=>10=>20 with Tsit5/dopri5 at rtol = atol = 1e-3, Dense(20=>10),
cross-entropy, Adam(0.001)), float32, on the bundled MNIST sample tiled to the
size asked for. Per system and batch size (128 and 8,192 by default) it reports
the median time of a training step over ``--steps`` steps after a warm-up, as
throughput in images per second, and the time of one full-size epoch (60,000
images, batch 128). Each measurement runs in its own process (so the
frameworks never share a GPU), and the systems are interleaved for
``--rounds`` rounds. tinynode's CPU run (NumPy, one BLAS thread, as
``tinynode train`` runs) is measured in the same run, for the ratio the GPU
issue asks for: GPU throughput at batch 8,192 against tinynode's own CPU
throughput.

Systems: ``tinynode`` (InterpolatingAdjoint, PI controller; the fused CuPy
kernels), ``torchdiffeq`` (dopri5, ``odeint`` with backprop through the solver
and ``odeint_adjoint``), ``diffrax`` (Tsit5, PIDController, BacksolveAdjoint
and RecursiveCheckpointAdjoint, jit). A system whose library is missing, or
that sees no GPU, is skipped and said so.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks import timing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {
    "tinynode": "tinynode, InterpolatingAdjoint, PI (fused CuPy kernels on the GPU)",
    "tinynode-cpu": "tinynode on the CPU (NumPy, one BLAS thread): the reference for the GPU speed-up",
    "torchdiffeq-direct": "torchdiffeq dopri5, odeint (backprop through the solver)",
    "torchdiffeq-adjoint": "torchdiffeq dopri5, odeint_adjoint",
    "diffrax-backsolve": "diffrax Tsit5, PIDController, BacksolveAdjoint, jit",
    "diffrax-recursive": "diffrax Tsit5, PIDController, RecursiveCheckpointAdjoint, jit",
}


def data(n):
    """The bundled sample tiled to ``n`` images (uint8) and labels, in a fixed shuffled order."""
    import numpy as np

    from tinynode.data import load_sample

    images, labels = load_sample()
    reps = -(-n // len(labels))
    order = np.random.default_rng(0).permutation(reps * len(labels))[:n]
    return np.tile(images, (reps, 1, 1))[order], np.tile(labels, reps)[order]


# -- one process per measurement: a step function for each system ----------------------------


def tinynode_step(device, batch):
    import tinynode as tn
    from tinynode.backend import item

    xp = tn.backend.get_array_module(device)
    model = tn.models.tutorial_model()
    params = xp.asarray(model.init(0))
    opt = tn.Adam(0.001)
    state = opt.init(params)

    def step(x, y):
        x = xp.asarray(x, dtype=xp.float32) / 255
        y = xp.asarray(y)
        logits, ctx = model.forward(params, x)
        loss, g = tn.logit_cross_entropy_grad(logits, y)
        _, grads = model.backward(params, ctx, g, need_gx=False)
        opt.step(params, grads, state)
        return item(loss)  # the loop's one sync per batch, as in fit

    return step


def torchdiffeq_step(device, batch, adjoint):
    import torch

    from benchmarks.peers.torchdiffeq_mnist import Model

    dev = torch.device("cuda" if device == "gpu" else "cpu")
    if device == "gpu" and not torch.cuda.is_available():
        raise SystemExit("torch sees no CUDA device")
    torch.set_num_threads(2)
    model = Model(adjoint).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)

    def step(x, y):
        x = torch.from_numpy(x).to(dev).float().div_(255).reshape(len(x), -1)
        y = torch.from_numpy(y).to(dev).long()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def diffrax_step(device, batch, config):
    os.environ["JAX_PLATFORMS"] = "cuda" if device == "gpu" else "cpu"
    import jax
    import jax.numpy as jnp
    import numpy as np

    from benchmarks.peers.diffrax_mnist import build

    if device == "gpu" and jax.default_backend() != "gpu":
        raise SystemExit(f"JAX sees no GPU (backend {jax.default_backend()})")
    from tinynode.models import tutorial_model

    flat = tutorial_model().init(0)
    p, offset = {}, 0
    for i, (n_in, n_out) in enumerate([(784, 20), (20, 10), (10, 10), (10, 20), (20, 10)]):
        p[f"W{i}"] = jnp.asarray(flat[offset : offset + n_in * n_out].reshape(n_out, n_in))
        offset += n_in * n_out
        p[f"b{i}"] = jnp.asarray(flat[offset : offset + n_out])
        offset += n_out
    opt, train_step, _ = build(config)
    state = {"p": p, "opt": opt.init(p)}

    def step(x, y):
        x = jnp.asarray(x.reshape(len(x), -1).astype(np.float32) / 255)
        state["p"], state["opt"], loss, _ = train_step(state["p"], state["opt"], x, jnp.asarray(y, jnp.int32))
        return float(loss)

    return step


def make_step(config, device, batch):
    if config.startswith("tinynode"):
        return tinynode_step("cpu" if config == "tinynode-cpu" else device, batch)
    if config.startswith("torchdiffeq"):
        return torchdiffeq_step(device, batch, config.endswith("adjoint"))
    return diffrax_step(device, batch, config.split("-")[1])


def worker(args):
    if args.config.startswith("tinynode"):
        from tinynode.backend import blas_threads

        with blas_threads(1):  # as tinynode.train.fit runs
            return _measure(args)
    return _measure(args)


def _measure(args):
    images, labels = data(max(args.batch * (args.steps + args.warmup), args.epoch_images or 0))
    step = make_step(args.config, args.device, args.batch)
    out = {"config": args.config, "device": args.device, "batch": args.batch}
    for i in range(args.warmup):  # compilation, CuPy's kernel cache, allocator pools
        step(images[i * args.batch : (i + 1) * args.batch], labels[i * args.batch : (i + 1) * args.batch])
    times = []
    for i in range(args.warmup, args.warmup + args.steps):
        rows = slice(i * args.batch, (i + 1) * args.batch)
        t0 = time.perf_counter()
        step(images[rows], labels[rows])
        times.append(time.perf_counter() - t0)
    out["step_s"] = statistics.median(times)
    out["images_per_s"] = args.batch / out["step_s"]
    if args.epoch_images:
        t0 = time.perf_counter()
        for i in range(0, args.epoch_images, args.batch):
            step(images[i : i + args.batch], labels[i : i + args.batch])
        out["epoch_s"] = time.perf_counter() - t0
    print(json.dumps(out))


# -- the driver ------------------------------------------------------------------------------


def run_one(config, device, batch, args, epoch_images=0):
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.gpu",
        "worker",
        "--config",
        config,
        "--device",
        device,
        "--batch",
        str(batch),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--epoch-images",
        str(epoch_images),
    ]
    env = timing.worker_env(ROOT)
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.timeout)
    if res.returncode != 0:
        return {"config": config, "batch": batch, "failed": (res.stderr or res.stdout).strip()[-300:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    w = sub.add_parser("worker")
    w.add_argument("--config", choices=sorted(CONFIGS), required=True)
    w.add_argument("--device", choices=["cpu", "gpu"], default="gpu")
    w.add_argument("--batch", type=int, default=128)
    w.add_argument("--steps", type=int, default=20)
    w.add_argument("--warmup", type=int, default=3)
    w.add_argument("--epoch-images", type=int, default=0)
    parser.add_argument("--device", choices=["cpu", "gpu"], default="gpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 8192])
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--epoch-images", type=int, default=60_000, help="the full-size epoch (0: skip)")
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--quick", action="store_true", help="batches 128 and 1024, 1 round, 5 steps, no epoch")
    parser.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results", "gpu-latest.json"))
    args = parser.parse_args(argv)
    if args.command == "worker":
        return worker(args)
    if args.quick:
        args.batches, args.rounds, args.steps, args.warmup, args.epoch_images = [128, 1024], 1, 5, 2, 0
    results = []
    for r in range(args.rounds):
        for batch in args.batches:
            for config in args.configs:
                row = run_one(config, args.device, batch, args)
                row["round"] = r
                results.append(row)
                print(
                    f"round {r + 1} B={batch:<5} {config:22s} "
                    + (
                        f"{row['step_s'] * 1e3:8.2f} ms/step {row['images_per_s']:12,.0f} images/s"
                        if "step_s" in row
                        else f"FAILED: {row['failed']}"
                    ),
                    flush=True,
                )
    epochs = []
    if args.epoch_images:
        for config in args.configs:
            row = run_one(config, args.device, 128, args, args.epoch_images)
            epochs.append(row)
            print(
                f"epoch of {args.epoch_images} images, {config:22s} "
                + (f"{row['epoch_s']:.2f} s" if "epoch_s" in row else f"FAILED: {row['failed']}"),
                flush=True,
            )
    summary = {}
    for row in results:
        if "step_s" in row:
            summary.setdefault((row["config"], row["batch"]), []).append(row["images_per_s"])
    print("\nmedian throughput (images/s)")
    for (config, batch), values in sorted(summary.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"  B={batch:<5} {config:22s} {statistics.median(values):12,.0f}")
    ref_cpu = summary.get(("tinynode-cpu", max(args.batches)))
    ref_gpu = summary.get(("tinynode", max(args.batches)))
    if ref_cpu and ref_gpu and args.device == "gpu":
        print(
            f"\ntinynode GPU / its own CPU throughput at B={max(args.batches)}: "
            f"{statistics.median(ref_gpu) / statistics.median(ref_cpu):.1f}x"
        )
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(
            {
                "device": args.device,
                "args": {k: v for k, v in vars(args).items() if k != "command"},
                "steps": results,
                "epochs": epochs,
            },
            f,
            indent=1,
        )
    print(f"results: {args.json}")


if __name__ == "__main__":
    main()
