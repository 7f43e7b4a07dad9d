"""tinynode against torchdiffeq, diffrax and torchode on the Lux tutorial's workload, side by side.

    python -m benchmarks.compare                     # everything (about 9 min on 2 cores), then the page
    python -m benchmarks.compare --quick             # one round at N = 1500, no Fashion-MNIST, no overhead
    python -m benchmarks.compare --only mnist --sizes 1500 --rounds 3 --configs tinynode-interpolating torchdiffeq-adjoint
    python -m benchmarks.compare --docs-only         # rewrite docs/benchmarks.md from benchmarks/results/latest.json

Needs the peers installed beside tinynode (the ``bench`` extra; a missing
peer is skipped and said so). Every configuration trains the same model on
the same data from the same initial weights with the same batch order
(``benchmarks/workload.py``), each in its own process
(``benchmarks/tinynode_mnist.py``, ``benchmarks/peers/*.py``), so the
whole-process wall time (interpreter start, imports, JIT, the 9 epochs and
their evaluations) and the peak memory (``ru_maxrss`` from ``os.wait4``) are
measured from outside. The runner interleaves the configurations
(A B C ... A B C ...) for ``--rounds`` rounds and reports medians and min/max
spreads, and ratios tinynode-interpolating / peer computed within each round.

Pieces (``--only``): ``mnist`` (N in ``--sizes``), ``fashion`` (one epoch of
the full 60,000-image Fashion-MNIST training file, tinynode-interpolating
against the fastest configuration of each peer), ``overhead`` (forward-solve
time / (nf x one bare evaluation) at batch 32 to 8192, per system),
``count`` (diffrax's real evaluation counts, from a host callback, untimed),
``breakdown`` (where tinynode's steady batch goes: ``benchmarks/breakdown.py``).
Each piece's results replace that piece in ``benchmarks/results/latest.json``
(plus a time-stamped copy of the run); ``--write-docs`` (on by default, off
with ``--no-docs``) then regenerates ``docs/benchmarks.md`` and
``docs/img/benchmark_epochs.png`` from ``latest.json``.
"""

import argparse
import compileall
import datetime
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata

from benchmarks import timing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
LATEST = os.path.join(RESULTS, "latest.json")
DOCS = os.path.join(ROOT, "docs", "benchmarks.md")
PLOT = os.path.join(ROOT, "docs", "img", "benchmark_epochs.png")

REFERENCE = "tinynode-interpolating"

#: key -> (system, worker module, worker config, the library it needs, a one-line description)
CONFIGS = {
    "tinynode-interpolating": ("tinynode", "benchmarks.tinynode_mnist", "interpolating", "tinynode",
                               "Tsit5, PI controller (OrdinaryDiffEq's), InterpolatingAdjoint"),
    "tinynode-gauss": ("tinynode", "benchmarks.tinynode_mnist", "gauss", "tinynode",
                       "Tsit5, PI, GaussAdjoint"),
    "tinynode-backsolve": ("tinynode", "benchmarks.tinynode_mnist", "backsolve", "tinynode",
                           "Tsit5, PI, BacksolveAdjoint"),
    "tinynode-discrete": ("tinynode", "benchmarks.tinynode_mnist", "discrete", "tinynode",
                          "Tsit5, PI, DiscreteAdjoint"),
    "tinynode-interpolating-i": ("tinynode", "benchmarks.tinynode_mnist", "interpolating-i", "tinynode",
                                 "Tsit5, I controller, InterpolatingAdjoint"),
    "torchdiffeq-adjoint": ("torchdiffeq", "benchmarks.peers.torchdiffeq_mnist", "adjoint", "torchdiffeq",
                            "dopri5, odeint_adjoint (backsolve)"),
    "torchdiffeq-direct": ("torchdiffeq", "benchmarks.peers.torchdiffeq_mnist", "direct", "torchdiffeq",
                           "dopri5, odeint (autograd through the solver)"),
    "diffrax-backsolve": ("diffrax", "benchmarks.peers.diffrax_mnist", "backsolve", "diffrax",
                          "Tsit5, PIDController (I), BacksolveAdjoint, jit"),
    "diffrax-recursive": ("diffrax", "benchmarks.peers.diffrax_mnist", "recursive", "diffrax",
                          "Tsit5, PIDController (I), RecursiveCheckpointAdjoint, jit"),
    "torchode-autodiff": ("torchode", "benchmarks.peers.torchode_mnist", "autodiff-joint", "torchode",
                          "Tsit5, IntegralController, AutoDiffAdjoint, joint batch (1, 20 B)"),
}
PEERS = ("torchdiffeq", "diffrax", "torchode")
#: The fastest configuration of each peer when no measurement says otherwise (from earlier runs of this benchmark).
DEFAULT_FASTEST = {"torchdiffeq": "torchdiffeq-direct", "diffrax": "diffrax-backsolve",
                   "torchode": "torchode-autodiff"}
OVERHEAD_WORKERS = {"tinynode": "benchmarks.tinynode_mnist", "torchdiffeq": "benchmarks.peers.torchdiffeq_mnist",
                    "torchode": "benchmarks.peers.torchode_mnist", "diffrax": "benchmarks.peers.diffrax_mnist"}
PACKAGES = ("tinynode", "numpy", "torch", "torchdiffeq", "torchode", "sympy", "jax", "jaxlib", "diffrax",
            "equinox", "optax", "matplotlib")
#: The targets the issue set, at N = 1500: (metric, peer configs ("fastest": the peer's fastest), at most).
TARGETS = [
    ("steady", "diffrax-fastest", 0.5, "median steady epoch <= 0.5x diffrax's fastest configuration"),
    ("steady", "torchdiffeq-adjoint", 0.2, "median steady epoch <= 0.2x torchdiffeq odeint_adjoint"),
    ("wall", "torchdiffeq-fastest", 0.3, "whole process <= 0.3x torchdiffeq's (fastest configuration)"),
    ("wall", "diffrax-fastest", 0.1, "whole process <= 0.1x diffrax's (fastest configuration)"),
]


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------- running workers

def available(key):
    return importlib.util.find_spec(CONFIGS[key][3]) is not None


def run_worker(module, args, out_path, timeout):
    """Run ``python -m module args`` as its own process; wall time and peak RSS measured from outside."""
    env = timing.worker_env(ROOT)
    log_path = out_path + ".log"
    load_before = os.getloadavg()[0]
    with open(log_path, "wb") as log_file:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                                stdout=log_file, stderr=subprocess.STDOUT)
        # Block in wait4 (no polling: a parent that wakes up every few ms steals a core from the
        # worker's 2 BLAS / OpenMP threads, which spin-wait for each other); a timer enforces the timeout.
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(log_path, "rb") as f:
        output = f.read().decode("utf-8", "replace")
    info = {"wall_s": wall, "maxrss_kib": usage.ru_maxrss, "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
            "returncode": proc.returncode, "loadavg_before": load_before}
    if proc.returncode != 0:
        info["error"] = output[-3000:]
    return info


def train_run(key, data, epochs, tmp, tag, timeout):
    system, module, config, _, _ = CONFIGS[key]
    out = os.path.join(tmp, f"{tag}-{key}.json")
    info = run_worker(module, ["--data", data, "--out", out, "--config", config, "--epochs", str(epochs)], out,
                      timeout)
    if info["returncode"] == 0:
        with open(out) as f:
            info.update(json.load(f))
    info["key"] = key
    return info


def steady(run):
    """Median epoch time over epochs 2.. of one run (None for a 1-epoch run)."""
    times = [e["time"] for e in run.get("epochs", [])[1:]]
    return statistics.median(times) if times else None


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarize(runs_by_key, reference=REFERENCE):
    """Medians, spreads and per-round ratios reference / config."""
    out = {}
    ok = {k: [r for r in runs if r.get("returncode") == 0 and r.get("epochs")] for k, runs in runs_by_key.items()}
    for key, runs in ok.items():
        if not runs:
            out[key] = {"failed": True, "error": (runs_by_key[key] or [{}])[-1].get("error", "")[-1500:]}
            continue
        last = runs[-1]["epochs"]
        s = {
            "runs": len(runs),
            "steady": spread([steady(r) for r in runs]),
            "first": spread([r["epochs"][0]["time"] for r in runs]),
            "wall": spread([r["wall_s"] for r in runs]),
            "imports": spread([r.get("imports_s") for r in runs]),
            "maxrss_mib": spread([r["maxrss_kib"] / 1024 for r in runs]),
            "nfe_fwd": spread([statistics.median([e["nfe_fwd"] for e in r["epochs"]]) for r in runs
                               if r["epochs"][0]["nfe_fwd"] is not None]),
            "nfe_bwd": spread([statistics.median([e["nfe_bwd"] for e in r["epochs"]]) for r in runs
                               if r["epochs"][0]["nfe_bwd"] is not None]),
            "train_acc": last[-1]["train_acc"], "test_acc": last[-1]["test_acc"], "loss": last[-1]["loss"],
            "epoch_times_last_run": [e["time"] for e in last],
            "nfe_method": runs[-1].get("nfe_method"), "notes": runs[-1].get("notes"),
            "versions": runs[-1].get("versions"),
        }
        out[key] = s
    ref_runs = {r["round"]: r for r in ok.get(reference, [])}
    for key, runs in ok.items():
        if key == reference or out[key].get("failed"):
            continue
        ratios = {"steady": [], "wall": [], "first": []}
        for r in runs:
            ref = ref_runs.get(r["round"])
            if ref is None:
                continue
            if steady(ref) is not None and steady(r):
                ratios["steady"].append(steady(ref) / steady(r))
            ratios["wall"].append(ref["wall_s"] / r["wall_s"])
            ratios["first"].append(ref["epochs"][0]["time"] / r["epochs"][0]["time"])
        out[key]["ratio_vs_reference"] = {m: spread(v) for m, v in ratios.items()}
    return out


def fastest_of(summary, system):
    """The peer's configuration with the smallest median steady epoch in ``summary``."""
    best = None
    for key, s in summary.items():
        if CONFIGS.get(key, ("",))[0] != system or s.get("failed") or not s.get("steady"):
            continue
        if best is None or s["steady"]["median"] < summary[best]["steady"]["median"]:
            best = key
    return best


def run_interleaved(keys, data, epochs, rounds, tmp, tag, timeout):
    runs = {k: [] for k in keys}
    for rnd in range(rounds):
        for key in keys:
            r = train_run(key, data, epochs, tmp, f"{tag}-r{rnd}", timeout)
            r["round"] = rnd
            runs[key].append(r)
            st = steady(r)
            log(f"  [{tag} round {rnd + 1}/{rounds}] {key:26s} "
                + (f"steady {st:.4f}s " if st is not None else "")
                + (f"first {r['epochs'][0]['time']:.3f}s " if r.get("epochs") else "")
                + f"wall {r['wall_s']:.2f}s rss {r['maxrss_kib'] / 1024:.0f}MiB"
                + ("" if r["returncode"] == 0 else f"  FAILED rc={r['returncode']}"))
    return runs


# ----------------------------------------------------------------------------- the pieces

def piece_mnist(args, tmp, keys):
    from benchmarks import workload
    section = {}
    for n in args.sizes:
        data = os.path.join(tmp, f"mnist-{n}.npz")
        sizes = workload.prepare(data, n)
        log(f"MNIST N = {n} ({sizes['n_train']} train / {sizes['n_test']} test), {args.rounds} rounds, "
            f"{len(keys)} configurations")
        runs = run_interleaved(keys, data, args.epochs, args.rounds, tmp, f"n{n}", args.timeout)
        summary = summarize(runs)
        section[str(n)] = {"sizes": sizes, "rounds": args.rounds, "epochs": args.epochs, "order": keys,
                           "summary": summary, "fastest": {p: fastest_of(summary, p) for p in PEERS},
                           "runs": {k: [_slim(r) for r in v] for k, v in runs.items()}}
    return section


def _slim(run):
    keep = ("round", "wall_s", "maxrss_kib", "user_s", "sys_s", "returncode", "loadavg_before", "imports_s",
            "in_process_s", "epochs", "error")
    return {k: run[k] for k in keep if k in run}


def piece_fashion(args, tmp, previous):
    from benchmarks import workload
    fastest = dict(DEFAULT_FASTEST)
    source = "defaults (the fastest in earlier runs of this benchmark)"
    mnist = (previous or {}).get("mnist") or {}
    if mnist:
        n = max(mnist, key=int)
        measured = mnist[n].get("fastest", {})
        fastest.update({p: k for p, k in measured.items() if k})
        source = f"fastest median steady epoch at N = {n} in the MNIST results"
    keys = [REFERENCE] + [fastest[p] for p in PEERS]
    keys = [k for k in keys if k in args.configs and available(k)]
    data = os.path.join(tmp, "fashion.npz")
    try:
        sizes = workload.prepare(data, None, dataset="fashion-mnist")
    except Exception as e:  # noqa: BLE001 (no Fashion-MNIST on this machine: say so and go on)
        log(f"Fashion-MNIST skipped: {e}")
        return {"skipped": str(e)}
    log(f"Fashion-MNIST ({sizes['n_train']} train / {sizes['n_test']} test), 1 epoch, {args.fashion_rounds} "
        f"round(s): {', '.join(keys)} (chosen by {source})")
    runs = run_interleaved(keys, data, 1, args.fashion_rounds, tmp, "fashion", args.timeout)
    return {"sizes": sizes, "rounds": args.fashion_rounds, "epochs": 1, "order": keys, "chosen_by": source,
            "summary": summarize(runs), "runs": {k: [_slim(r) for r in v] for k, v in runs.items()}}


def piece_overhead(args, tmp):
    from benchmarks import workload
    data = os.path.join(tmp, "overhead.npz")
    workload.prepare(data, 200)
    out = {}
    systems = [s for s in OVERHEAD_WORKERS if any(CONFIGS[k][0] == s and available(k) for k in args.configs)]
    for system in systems:
        path = os.path.join(tmp, f"overhead-{system}.json")
        info = run_worker(OVERHEAD_WORKERS[system], ["overhead", "--data", data, "--repeat", str(args.repeat),
                                                     "--json", path, "--batch", *map(str, args.batch)],
                          path, args.timeout)
        if info["returncode"] == 0:
            with open(path) as f:
                out[system] = json.load(f)
            log(f"overhead {system}: " + ", ".join(f"B={r['batch']}: {r['overhead']:.2f}"
                                                    for r in out[system]["rows"]))
        else:
            out[system] = {"failed": True, "error": info.get("error", "")[-1500:]}
            log(f"overhead {system}: FAILED")
    return out


def piece_count(args, tmp):
    from benchmarks import workload
    data = os.path.join(tmp, "count-1500.npz")
    workload.prepare(data, 1500)
    out = {}
    for key in ("diffrax-backsolve", "diffrax-recursive"):
        if key not in args.configs or not available(key):
            continue
        path = os.path.join(tmp, f"count-{key}.json")
        info = run_worker(CONFIGS[key][1], ["count", "--data", data, "--out", path, "--config", CONFIGS[key][2]],
                          path, args.timeout)
        if info["returncode"] == 0:
            with open(path) as f:
                out[key] = json.load(f)
            out[key].pop("batches", None)
            log(f"counted NFE {key}: forward {out[key]['fwd']} (formula {out[key]['fwd_formula']}), "
                f"backward {out[key]['bwd']} per epoch")
        else:
            out[key] = {"failed": True, "error": info.get("error", "")[-1500:]}
    return out


def piece_breakdown(args, tmp):
    """Where a steady batch's time goes (benchmarks/breakdown.py), for both controllers."""
    out = {}
    for controller in ("pi", "i"):
        path = os.path.join(tmp, f"breakdown-{controller}.json")
        info = run_worker("benchmarks.breakdown", ["--controller", controller, "--json", path], path, args.timeout)
        if info["returncode"] == 0:
            with open(path) as f:
                out[controller] = json.load(f)
            b = out[controller]["budget"]
            log(f"breakdown {controller}: batch {b['batch_s'] * 1e6:.0f} us = forward {b['ode_forward_s'] * 1e6:.0f}"
                f" + backward {b['ode_backward_s'] * 1e6:.0f} + rest {b['rest_s'] * 1e6:.0f}")
        else:
            out[controller] = {"failed": True, "error": info.get("error", "")[-1500:]}
    return out


def _rounded(obj):
    """Floats to 6 significant digits (the results files stay small)."""
    if isinstance(obj, float):
        return float(f"{obj:.6g}")
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- the machine

def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = int(line.split()[1]) / 1024 ** 2
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "memory_gib": mem, "kernel": platform.release(), "python": platform.python_version(),
            "versions": versions, "loadavg": os.getloadavg(), "blas": timing.blas_info(ROOT)}


# ----------------------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=["mnist", "fashion", "overhead", "count", "breakdown"],
                        default=["mnist", "count", "fashion", "overhead", "breakdown"], help="which pieces to run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per MNIST size")
    parser.add_argument("--fashion-rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1500, 5000], help="MNIST sizes N")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 128, 1024, 8192], help="overhead batches")
    parser.add_argument("--repeat", type=int, default=100, help="overhead: timed solves per batch size")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one worker process may take")
    parser.add_argument("--quick", action="store_true",
                        help="one round at N = 1500, no Fashion-MNIST, overhead or counting (a smoke test)")
    parser.add_argument("--write-docs", dest="docs", action="store_true", default=True,
                        help="regenerate docs/benchmarks.md and its plot from latest.json (default)")
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    parser.add_argument("--docs-only", action="store_true", help="only regenerate the page from latest.json")
    parser.add_argument("--results", default=LATEST, help="the merged results file")
    parser.add_argument("--keep-blas-pins", action="store_true",
                        help=f"run the workers with {' and '.join(timing.BLAS_PINS)} as set here "
                             "(by default they are removed: see benchmarks/timing.py)")
    args = parser.parse_args(argv)
    timing.KEEP_BLAS_PINS = args.keep_blas_pins
    if args.quick:
        args.rounds, args.sizes, args.only = 1, [1500], ["mnist"]

    previous = {}
    if os.path.exists(args.results):
        with open(args.results) as f:
            previous = json.load(f)
    if args.docs_only:
        from benchmarks.report import write_docs
        write_docs(previous, DOCS, PLOT)
        log(f"wrote {DOCS} and {PLOT}")
        return 0

    keys = [k for k in args.configs if available(k)]
    missing = [k for k in args.configs if k not in keys]
    if missing:
        log(f"skipped (library not installed): {', '.join(missing)}")
    started = datetime.datetime.now().astimezone()
    result = {"machine": machine(), "started": started.isoformat(timespec="seconds"),
              "command": " ".join(["python -m benchmarks.compare", *(argv if argv is not None else sys.argv[1:])]),
              "skipped": missing}
    # Byte-compile tinynode and the workers, as a regular (non-editable) pip install does for every
    # package in site-packages: otherwise, with PYTHONDONTWRITEBYTECODE set (as on the development
    # machines), each tinynode process would recompile its sources (~50 ms) while the peers' are cached.
    for package in ("tinynode", "benchmarks"):
        compileall.compile_dir(os.path.join(ROOT, package), quiet=1)
    tmp = tempfile.mkdtemp(prefix="tinynode-bench-")
    t0 = time.perf_counter()
    try:
        if "mnist" in args.only:
            result["mnist"] = piece_mnist(args, tmp, keys)
        if "count" in args.only:
            result["count"] = piece_count(args, tmp)
        if "fashion" in args.only:
            merged = dict(previous)
            if "mnist" in result:
                merged["mnist"] = {**previous.get("mnist", {}), **result["mnist"]}
            result["fashion"] = piece_fashion(args, tmp, merged)
        if "overhead" in args.only:
            result["overhead"] = piece_overhead(args, tmp)
        if "breakdown" in args.only:
            result["breakdown"] = piece_breakdown(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["duration_s"] = time.perf_counter() - t0
    log(f"done in {result['duration_s'] / 60:.1f} min")

    stamp = started.strftime("%Y%m%d-%H%M%S")
    results_dir = os.path.dirname(os.path.abspath(args.results))
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, f"compare-{stamp}.json"), "w") as f:
        json.dump(_rounded(result), f, separators=(",", ":"))
    merged = dict(previous)
    merged.setdefault("pieces", {})
    for piece in ("mnist", "fashion", "overhead", "count", "breakdown"):
        if piece not in result:
            continue
        if piece == "mnist":
            merged["mnist"] = {**previous.get("mnist", {}), **result["mnist"]}
            for n in result["mnist"]:
                merged["pieces"][f"mnist-{n}"] = {"started": result["started"], "command": result["command"]}
        else:
            merged[piece] = result[piece]
            merged["pieces"][piece] = {"started": result["started"], "command": result["command"]}
    merged["machine"] = result["machine"]
    with open(args.results + ".tmp", "w") as f:
        json.dump(_rounded(merged), f, separators=(",", ":"))
    os.replace(args.results + ".tmp", args.results)
    log(f"results: {args.results} (and compare-{stamp}.json)")
    if args.docs:
        from benchmarks.report import write_docs
        write_docs(merged, DOCS, PLOT)
        log(f"wrote {DOCS} and {PLOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
