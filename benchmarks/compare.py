"""tinynode against torchdiffeq, diffrax and torchode on the Lux tutorial's workload, side by side.

    python -m benchmarks.compare                     # everything (about 9 min on 2 cores), then the page
    python -m benchmarks.compare --quick             # one round at N = 1500, no Fashion-MNIST, no overhead
    python -m benchmarks.compare --only mnist --sizes 1500 --rounds 3 --configs tinynode-interpolating diffrax-backsolve
    python -m benchmarks.compare --baseline /tmp/tinynode-base   # also against an older checkout of tinynode
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
from benchmarks.configs import (
    BASELINE_OVERHEAD_BATCH,
    BASELINE_STEADY_LIMIT,
    BASELINE_SYSTEM,
    CONFIGS,
    DEFAULT_FASTEST,
    OVERHEAD_WORKERS,
    PACKAGES,
    PEERS,
    REFERENCE,
    baseline_key,
    config_of,
    current_key,
    is_baseline,
    tinynode_keys,
)
from benchmarks.report import write_docs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
LATEST = os.path.join(RESULTS, "latest.json")
DOCS = os.path.join(ROOT, "docs", "benchmarks.md")
PLOT = os.path.join(ROOT, "docs", "img", "benchmark_epochs.png")


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------- running workers


def available(key):
    return importlib.util.find_spec(config_of(key)[3]) is not None


def baseline_info(directory):
    """What ``--baseline DIR`` points at: its absolute path and, when it is a git checkout, its commit."""
    directory = os.path.abspath(directory)
    if not os.path.isfile(os.path.join(directory, "tinynode", "__init__.py")):
        raise SystemExit(f"--baseline {directory}: no tinynode/__init__.py there (a checkout of tinynode is needed)")
    info = {"dir": directory, "commit": None, "subject": None}
    try:
        res = subprocess.run(
            ["git", "-C", directory, "log", "-1", "--format=%H%n%s"], capture_output=True, text=True, timeout=30
        )
        if res.returncode == 0:
            commit, _, subject = res.stdout.strip().partition("\n")
            info.update(commit=commit, subject=subject)
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def baseline_path(directory, tmp):
    """A folder whose ``tinynode`` is the baseline's and whose ``benchmarks`` is this tree's (symbolic links).

    A baseline worker runs with it as its working directory and first on its
    ``PYTHONPATH``, so ``import tinynode`` finds the baseline checkout's
    package while the workers, the workload and the timing helpers stay this
    tree's: both systems run the same benchmark code.
    """
    path = os.path.join(tmp, "baseline-path")
    os.makedirs(path, exist_ok=True)
    os.symlink(os.path.join(directory, "tinynode"), os.path.join(path, "tinynode"))
    os.symlink(os.path.join(ROOT, "benchmarks"), os.path.join(path, "benchmarks"))
    return path


def tinynode_expected(key_or_system, baseline):
    """The real folder a worker of this configuration (or overhead system) must import tinynode from."""
    if key_or_system == BASELINE_SYSTEM or is_baseline(key_or_system):
        return os.path.realpath(os.path.join(baseline["dir"], "tinynode"))
    return os.path.realpath(os.path.join(ROOT, "tinynode"))


def check_tinynode(info, reported, expected):
    """Mark a run failed if its worker imported tinynode from anywhere but ``expected``."""
    if reported is not None and os.path.realpath(reported) != expected:
        info["returncode"] = info.get("returncode") or 1
        info["error"] = f"the worker imported tinynode from {reported}, not from {expected}"


def run_worker(module, args, out_path, timeout, path=None):
    """Run ``python -m module args`` as its own process; wall time and peak RSS measured from outside.

    ``path``: a folder to run in and put first on ``PYTHONPATH`` (:func:`baseline_path`); the repository
    root by default.
    """
    env = timing.worker_env(ROOT)
    if path is not None:
        env["PYTHONPATH"] = path + os.pathsep + env["PYTHONPATH"]
    log_path = out_path + ".log"
    load_before = os.getloadavg()[0]
    with open(log_path, "wb") as log_file:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=path or ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
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
    info = {
        "wall_s": wall,
        "maxrss_kib": usage.ru_maxrss,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "returncode": proc.returncode,
        "loadavg_before": load_before,
    }
    if proc.returncode != 0:
        info["error"] = output[-3000:]
    return info


def train_run(key, data, epochs, tmp, tag, timeout, baseline=None):
    """One training run of configuration ``key`` (a baseline key runs against ``baseline``, see :func:`main`)."""
    system, module, config, _, _ = config_of(key)
    out = os.path.join(tmp, f"{tag}-{key}.json")
    path = baseline["path"] if is_baseline(key) else None
    info = run_worker(
        module, ["--data", data, "--out", out, "--config", config, "--epochs", str(epochs)], out, timeout, path
    )
    if info["returncode"] == 0:
        with open(out) as f:
            info.update(json.load(f))
        if system in ("tinynode", BASELINE_SYSTEM):
            check_tinynode(info, info.get("tinynode_from"), tinynode_expected(key, baseline))
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
            "nfe_fwd": spread(
                [
                    statistics.median([e["nfe_fwd"] for e in r["epochs"]])
                    for r in runs
                    if r["epochs"][0]["nfe_fwd"] is not None
                ]
            ),
            "nfe_bwd": spread(
                [
                    statistics.median([e["nfe_bwd"] for e in r["epochs"]])
                    for r in runs
                    if r["epochs"][0]["nfe_bwd"] is not None
                ]
            ),
            "train_acc": last[-1]["train_acc"],
            "test_acc": last[-1]["test_acc"],
            "loss": last[-1]["loss"],
            "epoch_times_last_run": [e["time"] for e in last],
            "nfe_method": runs[-1].get("nfe_method"),
            "notes": runs[-1].get("notes"),
            "versions": runs[-1].get("versions"),
        }
        out[key] = s
    for key, runs in ok.items():
        if key == reference or out[key].get("failed"):
            continue
        out[key]["ratio_vs_reference"] = _ratios(ok.get(reference, []), runs)
        if is_baseline(key) and ok.get(current_key(key)):
            # current / baseline, within each round (for the reference's baseline the same as the above)
            out[key]["ratio_vs_current"] = _ratios(ok[current_key(key)], runs)
    return out


def _ratios(ref_runs, runs):
    """Spreads of ref / run (steady epoch, whole process, first epoch) over the rounds both ran."""
    by_round = {r["round"]: r for r in ref_runs}
    ratios = {"steady": [], "wall": [], "first": []}
    for r in runs:
        ref = by_round.get(r["round"])
        if ref is None:
            continue
        if steady(ref) is not None and steady(r):
            ratios["steady"].append(steady(ref) / steady(r))
        ratios["wall"].append(ref["wall_s"] / r["wall_s"])
        ratios["first"].append(ref["epochs"][0]["time"] / r["epochs"][0]["time"])
    return {m: spread(v) for m, v in ratios.items()}


def fastest_of(summary, system):
    """The peer's configuration with the smallest median steady epoch in ``summary``."""
    best = None
    for key, s in summary.items():
        if CONFIGS.get(key, ("",))[0] != system or s.get("failed") or not s.get("steady"):
            continue
        if best is None or s["steady"]["median"] < summary[best]["steady"]["median"]:
            best = key
    return best


def run_interleaved(keys, data, epochs, rounds, tmp, tag, timeout, baseline=None):
    runs = {k: [] for k in keys}
    for rnd in range(rounds):
        for key in keys:
            r = train_run(key, data, epochs, tmp, f"{tag}-r{rnd}", timeout, baseline)
            r["round"] = rnd
            runs[key].append(r)
            st = steady(r)
            log(
                f"  [{tag} round {rnd + 1}/{rounds}] {key:35s} "
                + (f"steady {st:.4f}s " if st is not None else "")
                + (f"first {r['epochs'][0]['time']:.3f}s " if r.get("epochs") else "")
                + f"wall {r['wall_s']:.2f}s rss {r['maxrss_kib'] / 1024:.0f}MiB"
                + ("" if r["returncode"] == 0 else f"  FAILED rc={r['returncode']}")
            )
    return runs


# ----------------------------------------------------------------------------- the pieces


def piece_mnist(args, tmp, keys):
    from benchmarks import workload

    section = {}
    for n in args.sizes:
        data = os.path.join(tmp, f"mnist-{n}.npz")
        sizes = workload.prepare(data, n)
        log(
            f"MNIST N = {n} ({sizes['n_train']} train / {sizes['n_test']} test), {args.rounds} rounds, "
            f"{len(keys)} configurations"
        )
        runs = run_interleaved(keys, data, args.epochs, args.rounds, tmp, f"n{n}", args.timeout, args.baseline)
        summary = summarize(runs)
        section[str(n)] = {
            "sizes": sizes,
            "rounds": args.rounds,
            "epochs": args.epochs,
            "order": keys,
            "summary": summary,
            "fastest": {p: fastest_of(summary, p) for p in PEERS},
            "runs": {k: [_slim(r) for r in v] for k, v in runs.items()},
        }
        if any(is_baseline(k) for k in keys):
            section[str(n)]["baseline"] = _baseline_record(args.baseline)
    return section


def _baseline_record(baseline):
    """What a section stores about the baseline it ran against (not the temporary path)."""
    return {k: baseline[k] for k in ("dir", "commit", "subject")}


def _slim(run):
    keep = (
        "round",
        "wall_s",
        "maxrss_kib",
        "user_s",
        "sys_s",
        "returncode",
        "loadavg_before",
        "imports_s",
        "in_process_s",
        "epochs",
        "error",
        "tinynode_from",
    )
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
    if args.baseline and REFERENCE in keys:
        keys.insert(1, baseline_key(REFERENCE))
    data = os.path.join(tmp, "fashion.npz")
    try:
        sizes = workload.prepare(data, None, dataset="fashion-mnist")
    except Exception as e:  # noqa: BLE001 (no Fashion-MNIST on this machine: say so and go on)
        log(f"Fashion-MNIST skipped: {e}")
        return {"skipped": str(e)}
    log(
        f"Fashion-MNIST ({sizes['n_train']} train / {sizes['n_test']} test), 1 epoch, {args.fashion_rounds} "
        f"round(s): {', '.join(keys)} (chosen by {source})"
    )
    runs = run_interleaved(keys, data, 1, args.fashion_rounds, tmp, "fashion", args.timeout, args.baseline)
    out = {
        "sizes": sizes,
        "rounds": args.fashion_rounds,
        "epochs": 1,
        "order": keys,
        "chosen_by": source,
        "summary": summarize(runs),
        "runs": {k: [_slim(r) for r in v] for k, v in runs.items()},
    }
    if any(is_baseline(k) for k in keys):
        out["baseline"] = _baseline_record(args.baseline)
    return out


def piece_overhead(args, tmp):
    """Each system's overhead worker, ``--overhead-rounds`` times interleaved (medians over the rounds).

    With ``--baseline`` tinynode's worker runs a second time per round, right after the current tree's,
    importing tinynode from the baseline checkout (system :data:`BASELINE_SYSTEM`).
    """
    from benchmarks import workload

    data = os.path.join(tmp, "overhead.npz")
    workload.prepare(data, 200)
    systems = [s for s in OVERHEAD_WORKERS if any(CONFIGS[k][0] == s and available(k) for k in args.configs)]
    if args.baseline and "tinynode" in systems:
        systems.insert(systems.index("tinynode") + 1, BASELINE_SYSTEM)
    runs = {s: [] for s in systems}
    rounds = max(args.overhead_rounds, 1)
    for rnd in range(rounds):
        for system in systems:
            baseline = system == BASELINE_SYSTEM
            path = os.path.join(tmp, f"overhead-r{rnd}-{system.replace(' ', '-')}.json")
            info = run_worker(
                OVERHEAD_WORKERS["tinynode" if baseline else system],
                [
                    "overhead",
                    "--data",
                    data,
                    "--repeat",
                    str(args.repeat),
                    "--json",
                    path,
                    "--batch",
                    *map(str, args.batch),
                ],
                path,
                args.timeout,
                args.baseline["path"] if baseline else None,
            )
            doc = None
            if info["returncode"] == 0:
                with open(path) as f:
                    doc = json.load(f)
                if system in ("tinynode", BASELINE_SYSTEM):
                    check_tinynode(info, doc.get("tinynode_from"), tinynode_expected(system, args.baseline))
            if info["returncode"] == 0:
                runs[system].append(doc)
                log(
                    f"overhead {system}"
                    + (f" (round {rnd + 1}/{rounds})" if rounds > 1 else "")
                    + ": "
                    + ", ".join(f"B={r['batch']}: {r['overhead']:.2f}" for r in doc["rows"])
                )
            else:
                runs[system].append({"failed": True, "error": info.get("error", "")[-1500:]})
                log(f"overhead {system}: FAILED")
    out = {system: _merge_overhead(docs) for system, docs in runs.items()}
    if BASELINE_SYSTEM in out:
        out[BASELINE_SYSTEM]["baseline"] = _baseline_record(args.baseline)
    return out


def _merge_overhead(docs):
    """One system's overhead results over the rounds: each row's medians, the overhead's min and max."""
    good = [d for d in docs if not d.get("failed")]
    if not good:
        return docs[-1]
    if len(docs) == 1:
        return good[0]
    out = {k: v for k, v in good[-1].items() if k not in ("rows", "adjoint_rows")}
    out["rounds"], out["failed_rounds"] = len(good), len(docs) - len(good)
    for name, ident, values in (
        ("rows", ("batch",), ("eval_us", "solve_us", "overhead")),
        ("adjoint_rows", ("sensealg", "batch"), ("floor_us", "pullback_us", "overhead")),
    ):
        groups = {}
        for d in good:
            for r in d.get(name, []):
                groups.setdefault(tuple(r[k] for k in ident), []).append(r)
        if not groups:
            continue
        merged = []
        for rows in groups.values():
            row = dict(rows[-1])
            for v in values + ("overhead_untiled",):
                if all(v in r for r in rows):
                    row[v] = statistics.median(r[v] for r in rows)
            row["overhead_min"] = min(r["overhead"] for r in rows)
            row["overhead_max"] = max(r["overhead"] for r in rows)
            merged.append(row)
        out[name] = merged
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
        info = run_worker(
            CONFIGS[key][1], ["count", "--data", data, "--out", path, "--config", CONFIGS[key][2]], path, args.timeout
        )
        if info["returncode"] == 0:
            with open(path) as f:
                out[key] = json.load(f)
            out[key].pop("batches", None)
            log(
                f"counted NFE {key}: forward {out[key]['fwd']} (formula {out[key]['fwd_formula']}), "
                f"backward {out[key]['bwd']} per epoch"
            )
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
            log(
                f"breakdown {controller}: batch {b['batch_s'] * 1e6:.0f} us = forward {b['ode_forward_s'] * 1e6:.0f}"
                f" + backward {b['ode_backward_s'] * 1e6:.0f} + rest {b['rest_s'] * 1e6:.0f}"
            )
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


def baseline_summary(result):
    """Lines for the log: current / baseline at each size, and both forward overheads at batch 128."""
    lines = []
    for n, section in (result.get("mnist") or {}).items():
        for key, s in section["summary"].items():
            r = (s.get("ratio_vs_current") or {}).get("steady")
            if not is_baseline(key) or not r:
                continue
            verdict = "ok" if r["median"] <= BASELINE_STEADY_LIMIT else "SLOWER than allowed"
            lines.append(
                f"N = {n}: {current_key(key)} steady epoch current / baseline {r['median']:.3f}x "
                f"({r['min']:.3f}-{r['max']:.3f}, {r['n']} rounds; at most {BASELINE_STEADY_LIMIT}: "
                f"{verdict})"
            )
    overhead = result.get("overhead") or {}
    cells = []
    for system in ("tinynode", BASELINE_SYSTEM):
        rows = {r["batch"]: r for r in (overhead.get(system) or {}).get("rows", [])}
        if BASELINE_OVERHEAD_BATCH in rows:
            cells.append(f"{system} {rows[BASELINE_OVERHEAD_BATCH]['overhead']:.2f}")
    if cells:
        lines.append(f"forward-solve overhead at batch {BASELINE_OVERHEAD_BATCH}: " + ", ".join(cells))
    return lines


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
                    mem = int(line.split()[1]) / 1024**2
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "loadavg": os.getloadavg(),
        "blas": timing.blas_info(ROOT),
    }


# ----------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["mnist", "fashion", "overhead", "count", "breakdown"],
        default=["mnist", "count", "fashion", "overhead", "breakdown"],
        help="which pieces to run",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per MNIST size")
    parser.add_argument("--fashion-rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1500, 5000], help="MNIST sizes N")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 128, 1024, 8192], help="overhead batches")
    parser.add_argument("--repeat", type=int, default=100, help="overhead: timed solves per batch size")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one worker process may take")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one round at N = 1500, no Fashion-MNIST, overhead or counting (a smoke test)",
    )
    parser.add_argument(
        "--write-docs",
        dest="docs",
        action="store_true",
        default=True,
        help="regenerate docs/benchmarks.md and its plot from latest.json (default)",
    )
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    parser.add_argument("--docs-only", action="store_true", help="only regenerate the page from latest.json")
    parser.add_argument("--results", default=LATEST, help="the merged results file")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="a checkout of an older tinynode (e.g. `git clone -q . /tmp/tinynode-base && git -C "
        "/tmp/tinynode-base checkout -q COMMIT`): adds '" + BASELINE_SYSTEM + "', the same "
        "workers importing tinynode from DIR, interleaved with the others, in the mnist, "
        "fashion and overhead pieces, and reports current / baseline",
    )
    parser.add_argument(
        "--baseline-configs",
        nargs="+",
        default=[REFERENCE],
        choices=tinynode_keys(),
        help="the tinynode configurations to run against the baseline too (with --baseline; "
        "each needs its own configuration in --configs)",
    )
    parser.add_argument(
        "--overhead-rounds",
        type=int,
        default=1,
        help="overhead: interleaved runs of every system's worker (medians over them)",
    )
    parser.add_argument(
        "--keep-blas-pins",
        action="store_true",
        help=f"run the workers with {' and '.join(timing.BLAS_PINS)} as set here "
        "(by default they are removed: see benchmarks/timing.py)",
    )
    args = parser.parse_args(argv)
    timing.KEEP_BLAS_PINS = args.keep_blas_pins
    if args.quick:
        args.rounds, args.sizes, args.only = 1, [1500], ["mnist"]

    previous = {}
    if os.path.exists(args.results):
        with open(args.results) as f:
            previous = json.load(f)
    if args.docs_only:
        write_docs(previous, DOCS, PLOT)
        log(f"wrote {DOCS} and {PLOT}")
        return 0

    keys = [k for k in args.configs if available(k)]
    missing = [k for k in args.configs if k not in keys]
    if missing:
        log(f"skipped (library not installed): {', '.join(missing)}")
    if args.baseline:
        args.baseline = baseline_info(args.baseline)
        log(
            f"baseline: tinynode from {args.baseline['dir']}"
            + (
                f" (commit {args.baseline['commit'][:10]}: {args.baseline['subject']})"
                if args.baseline["commit"]
                else ""
            )
        )
        for key in args.baseline_configs:
            if key in keys:  # right after its current configuration, so that both run close together
                keys.insert(keys.index(key) + 1, baseline_key(key))
            else:
                log(f"no baseline run of {key}: it is not among --configs")
    started = datetime.datetime.now().astimezone()
    result = {
        "machine": machine(),
        "started": started.isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.compare", *(argv if argv is not None else sys.argv[1:])]),
        "skipped": missing,
    }
    if args.baseline:
        result["baseline"] = _baseline_record(args.baseline)
    # Byte-compile tinynode and the workers, as a regular (non-editable) pip install does for every
    # package in site-packages: otherwise, with PYTHONDONTWRITEBYTECODE set (as on the development
    # machines), each tinynode process would recompile its sources (~50 ms) while the peers' are cached.
    for package in ("tinynode", "benchmarks"):
        compileall.compile_dir(os.path.join(ROOT, package), quiet=1)
    if args.baseline:
        compileall.compile_dir(os.path.join(args.baseline["dir"], "tinynode"), quiet=1)
    tmp = tempfile.mkdtemp(prefix="tinynode-bench-")
    t0 = time.perf_counter()
    try:
        if args.baseline:
            args.baseline["path"] = baseline_path(args.baseline["dir"], tmp)
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
    if args.baseline:
        for line in baseline_summary(result):
            log(line)

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
        write_docs(merged, DOCS, PLOT)
        log(f"wrote {DOCS} and {PLOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
