"""How tinynode's gradient scales with the size of the network and the batch, against the peers (issue 15).

    python -m benchmarks.scaling                       # everything, 3 rounds (under 15 min on 2 cores)
    python -m benchmarks.scaling --quick               # one round, few repetitions (about 80 s)
    python -m benchmarks.scaling --points 20x10x128 64x256x1024 --systems tinynode-default diffrax-recursive
    python -m benchmarks.scaling --json /tmp/scaling.json

What is measured: the wall time of ONE gradient of L = sum(y(1)) with respect
to y0 and the parameters, through dy/dt = MLP(y), MLP = Dense(D=>H, tanh) ->
Dense(H=>H, tanh) -> Dense(H=>D, tanh), t in [0, 1], Tsit5 (dopri5 for
torchdiffeq), rtol = atol = 1e-3, float32, y0 = tanh(normal noise) of shape
(batch, D), on the grid (D, H, batch) in ``POINTS``. Every system gets the same
Glorot-uniform weights (zero biases) and the same y0, made here with NumPy from
one seed and passed through an ``.npz`` per point.

Systems (``--systems``): tinynode-default (``solve_with_vjp`` with no options: its
automatic choices, DiscreteAdjoint, IController, BLAS threads by size),
tinynode-tutorial (the tutorial's PIController and InterpolatingAdjoint, 1 BLAS
thread: the defaults before issue 15), torchdiffeq-direct
(``odeint``, backprop through the solver), torchdiffeq-adjoint (``odeint_adjoint``),
diffrax-recursive (RecursiveCheckpointAdjoint, jit, steady state), diffrax-backsolve
(BacksolveAdjoint), torchode (IntegralController, AutoDiffAdjoint); torch runs with 2 threads.

How: each configuration lives in its own worker process for the whole run
(``benchmarks/peers/scaling_*.py``, a line-per-request JSON protocol), started
with the BLAS pins of ``benchmarks.timing.worker_env`` removed. The runner goes
round by round, and within a round point by point, asking each configuration in
turn (A B C ... A B C ...) for a few repetitions; the first visit of a point
builds the gradient and makes a warm-up call (compiles diffrax's jit; skipped
for the eager systems at the largest point in ``--quick``). Reported: the median
time, its ratio to the fastest peer at that point (peer = not tinynode), the
forward evaluations / backward VJPs where the system reports them, and for
tinynode the FLOPs of the vector-field work it did (2 batch (DH + HH + HD) per
evaluation, twice that per VJP) per second, against NumPy's float32 matrix
multiply rate on this machine (2048 x 2048, 1 and 2 BLAS threads; the % column
compares with the rate for the thread count the configuration ran with). A peer that is
not installed is skipped and said so. Results go to ``--json``.
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from benchmarks import timing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_JSON = os.path.join(ROOT, "benchmarks", "results", "scaling-latest.json")
SEED = 0

#: (D, H, batch)
POINTS = ((20, 10, 128), (20, 10, 8192), (64, 256, 1024), (256, 1024, 2048))
#: name -> (worker module, config, package that must be importable, BLAS threads for tinynode rows)
SYSTEMS = {
    "tinynode-default": ("benchmarks.peers.scaling_tinynode", "default", "tinynode", None),  # (as reported)
    "tinynode-tutorial": ("benchmarks.peers.scaling_tinynode", "tutorial", "tinynode", 1),
    "torchdiffeq-direct": ("benchmarks.peers.scaling_torch", "torchdiffeq-direct", "torchdiffeq", None),
    "torchdiffeq-adjoint": ("benchmarks.peers.scaling_torch", "torchdiffeq-adjoint", "torchdiffeq", None),
    "diffrax-recursive": ("benchmarks.peers.scaling_diffrax", "recursive", "diffrax", None),
    "diffrax-backsolve": ("benchmarks.peers.scaling_diffrax", "backsolve", "diffrax", None),
    "torchode": ("benchmarks.peers.scaling_torch", "torchode", "torchode", None),
}
JIT = ("diffrax-recursive", "diffrax-backsolve")
TIMEOUT = 1800  # seconds for one request


def log(*a):
    print(*a, flush=True)


def point_name(p):
    return "x".join(map(str, p))


def parse_point(s):
    try:
        d, h, b = (int(x) for x in s.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a point is DxHxBATCH, e.g. 20x10x128; got {s!r}") from None
    return (d, h, b)


def flops_per_eval(point):
    d, h, b = point
    return 2 * b * (d * h + h * h + h * d)


def reps_for(point, quick):
    """Repetitions per round: fewer as one evaluation costs more."""
    f = flops_per_eval(point)
    if f < 1e6:
        return 3 if quick else 10
    if f < 1e8:
        return 2 if quick else 5
    if f < 1e9:
        return 1 if quick else 3
    return 1


def make_data(point, path):
    """The point's y0 and Glorot-uniform weights (W as (out, in)), zero biases, float32, from SEED."""
    d, h, b = point
    rng = np.random.default_rng(SEED)
    arrays = {"y0": np.tanh(rng.standard_normal((b, d))).astype(np.float32)}
    for i, (n_in, n_out) in enumerate(((d, h), (h, h), (h, d)), 1):
        limit = np.sqrt(6.0 / (n_in + n_out))
        arrays[f"W{i}"] = rng.uniform(-limit, limit, (n_out, n_in)).astype(np.float32)
        arrays[f"b{i}"] = np.zeros(n_out, np.float32)
    np.savez(path, **arrays)


class Worker:
    """One configuration's process; ``ask`` sends a request and waits (no polling) for its answer line."""

    def __init__(self, name, tmp):
        module, config, _, _ = SYSTEMS[name]
        self.name = name
        self.log_path = os.path.join(tmp, f"{name}.log")
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--config", config],
            cwd=ROOT,
            env=timing.worker_env(ROOT),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log_file,
            text=True,
        )

    def ask(self, req, timeout=TIMEOUT):
        if self.proc.poll() is not None:
            return {"error": f"worker exited ({self.proc.returncode}): {self.tail()}"}
        killer = threading.Timer(timeout, self.proc.kill)
        killer.start()
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except OSError as e:
            line = ""
            err = str(e)
        else:
            err = ""
        finally:
            killer.cancel()
        if not line:
            self.proc.wait()
            return {"error": f"no answer ({err or 'exit ' + str(self.proc.returncode)}): {self.tail()}"}
        return json.loads(line)

    def tail(self):
        self.log_file.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-2000:]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def summarize(point, name, times, counts):
    row = {"point": point_name(point), "system": name, "n": len(times)}
    row["time_ms"] = statistics.median(times) * 1e3 if times else None
    row["min_ms"] = min(times) * 1e3 if times else None
    row["max_ms"] = max(times) * 1e3 if times else None
    row["counts"] = counts
    if name.startswith("tinynode") and counts and times:
        f = flops_per_eval(point)
        work = f * (counts["nf"] + counts.get("bwd_nf", 0)) + 2 * f * counts["nvjp"]
        row["flops"] = work
        row["gflops"] = work / statistics.median(times) / 1e9
    return row


def fmt_counts(c):
    if not c:
        return "-"
    nvjp = "-" if c.get("nvjp") is None else str(c["nvjp"])
    return f"{c['nf']}/{nvjp}"


def print_table(rows, machine):
    log()
    log(
        f"{'point (DxHxB)':<15} {'system/config':<20} {'time (ms)':>10} {'vs peer':>8} {'nf/nvjp':>9} "
        f"{'GFLOP/s':>8} {'% peak':>7}"
    )
    for r in rows:
        t = "failed" if r.get("time_ms") is None else f"{r['time_ms']:.1f}"
        ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.2f}"
        gf, pct = "", ""
        if r.get("gflops") is not None:
            gf = f"{r['gflops']:.1f}"
            threads = (r.get("counts") or {}).get("blas_threads") or SYSTEMS[r["system"]][3] or 1
            peak = machine.get(f"gflops_{threads}t")
            if peak:
                r["pct_peak"] = 100 * r["gflops"] / peak
                pct = f"{r['pct_peak']:.0f}%"
        log(f"{r['point']:<15} {r['system']:<20} {t:>10} {ratio:>8} {fmt_counts(r.get('counts')):>9} {gf:>8} {pct:>7}")
    if machine:
        log(
            f"\nNumPy float32 matmul 2048x2048: {machine.get('gflops_1t', 0):.1f} GFLOP/s (1 BLAS thread), "
            f"{machine.get('gflops_2t', 0):.1f} GFLOP/s (2). vs peer: time / the fastest peer's at the point."
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round, small repetition counts (about 3 min)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3, 1 with --quick)")
    parser.add_argument("--points", nargs="+", type=parse_point, default=list(POINTS), metavar="DxHxB")
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS), metavar="NAME")
    parser.add_argument("--json", default=DEFAULT_JSON, metavar="PATH")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    started = time.perf_counter()

    systems = []
    for name in args.systems:
        package = SYSTEMS[name][2]
        if importlib.util.find_spec(package) is None:
            log(f"skipped {name}: {package} is not installed")
        else:
            systems.append(name)
    largest = max(args.points, key=flops_per_eval)

    with tempfile.TemporaryDirectory(prefix="tinynode-scaling-") as tmp:
        paths = {}
        for p in args.points:
            paths[p] = os.path.join(tmp, f"{point_name(p)}.npz")
            make_data(p, paths[p])
        workers = {name: Worker(name, tmp) for name in systems}
        machine = {}
        try:
            for name, w in workers.items():  # wait for every worker's imports: they would steal the cores
                res = w.ask({"cmd": "ping"}, timeout=300)
                if "error" in res:
                    log(f"{name}: the worker did not start\n{res['error']}")
            probe = next((w for n, w in workers.items() if n.startswith("tinynode")), None)
            if probe is not None:
                machine = probe.ask({"cmd": "machine"})
                if "error" in machine:
                    log(f"machine rate failed: {machine['error']}")
                    machine = {}
            times = {(p, n): [] for p in args.points for n in systems}
            counts, notes, errors = {}, {}, {}
            for r in range(rounds):
                for p in args.points:
                    for name in systems:
                        if (p, name) in errors:
                            continue
                        warmup = 0 if args.quick and p == largest and name not in JIT else 1
                        req = {
                            "cmd": "measure",
                            "point": point_name(p),
                            "npz": paths[p],
                            "reps": reps_for(p, args.quick),
                            "warmup": warmup,
                        }
                        res = workers[name].ask(req)
                        if "error" in res:
                            errors[(p, name)] = res["error"]
                            log(f"round {r + 1} {point_name(p)} {name}: FAILED\n{res['error']}")
                            continue
                        times[(p, name)] += res["times"]
                        counts[(p, name)], notes[name] = res["counts"], res["notes"]
                        log(
                            f"round {r + 1} {point_name(p):<13} {name:<20} "
                            f"{1e3 * statistics.median(res['times']):10.1f} ms  {fmt_counts(res['counts'])}"
                        )
        finally:
            for w in workers.values():
                w.close()

    rows = []
    for p in args.points:
        block = [summarize(p, n, times[(p, n)], counts.get((p, n))) for n in systems]
        peers = [r["time_ms"] for r in block if r["time_ms"] is not None and not r["system"].startswith("tinynode")]
        for r in block:
            if peers and r["time_ms"] is not None:
                r["ratio"] = r["time_ms"] / min(peers)
            if (p, r["system"]) in errors:
                r["error"] = errors[(p, r["system"])]
        rows += block
    print_table(rows, machine)
    elapsed = time.perf_counter() - started
    log(f"\ntotal {elapsed:.0f} s ({rounds} round(s){', --quick' if args.quick else ''})")

    out = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "rounds": rounds,
        "elapsed_s": elapsed,
        "machine": machine,
        "blas": timing.blas_info(ROOT),
        "notes": notes,
        "workload": "grad of sum(y(1)) wrt y0 and params; MLP D=>H=>H=>D tanh; t in [0, 1]; rtol = atol = 1e-3; "
        "float32; Glorot-uniform weights, zero biases, seed 0",
        "rows": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
