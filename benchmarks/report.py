"""Writes docs/benchmarks.md and its plot from benchmarks/results/latest.json (see benchmarks/compare.py).

python -m benchmarks.compare --docs-only
"""

import os

from benchmarks.configs import (
    BASELINE_OVERHEAD_BATCH,
    BASELINE_OVERHEAD_LIMIT,
    BASELINE_STEADY_LIMIT,
    BASELINE_SYSTEM,
    CONFIGS,
    REFERENCE,
    TARGETS,
    config_of,
    current_key,
    is_baseline,
)
from benchmarks.scaling_report import scaling_lines

LABELS = {
    "tinynode-interpolating": "tinynode, InterpolatingAdjoint",
    "tinynode-gauss": "tinynode, GaussAdjoint",
    "tinynode-backsolve": "tinynode, BacksolveAdjoint",
    "tinynode-discrete": "tinynode, DiscreteAdjoint",
    "tinynode-interpolating-i": "tinynode, InterpolatingAdjoint, I controller",
    "torchdiffeq-adjoint": "torchdiffeq, odeint_adjoint",
    "torchdiffeq-direct": "torchdiffeq, odeint (direct backprop)",
    "diffrax-backsolve": "diffrax, BacksolveAdjoint",
    "diffrax-recursive": "diffrax, RecursiveCheckpointAdjoint",
    "torchode-autodiff": "torchode, AutoDiffAdjoint (joint)",
}


def label(key):
    """A configuration's name on the page (a baseline key: its tinynode configuration's, marked baseline)."""
    if is_baseline(key):
        return LABELS.get(current_key(key), current_key(key)).replace("tinynode", BASELINE_SYSTEM, 1)
    return LABELS.get(key, key)


def _t(x, digits=3):
    """Seconds, with enough digits."""
    if x is None:
        return "–"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.{digits}f}"


def _spread(s, fmt=_t, unit=""):
    if not s:
        return "–"
    if s["n"] == 1 or s["min"] == s["max"]:
        return f"{fmt(s['median'])}{unit}"
    return f"{fmt(s['median'])}{unit} ({fmt(s['min'])}–{fmt(s['max'])})"


def _ratio(s):
    if not s:
        return "–"
    return f"{s['median']:.2f}x ({s['min']:.2f}–{s['max']:.2f})"


def _nfe(s):
    if not s:
        return "–"
    return f"{s['median']:.0f}"


def _pct(x):
    return "–" if x is None else f"{100 * x:.1f} %"


def _pick(summary, system, metric):
    """The configuration of ``system`` with the smallest median ``metric``."""
    best = None
    for key, s in summary.items():
        if CONFIGS.get(key, ("",))[0] != system or s.get("failed") or not s.get(metric):
            continue
        if best is None or s[metric]["median"] < summary[best][metric]["median"]:
            best = key
    return best


def target_rows(section):
    """[(description, peer config, ratio spread, limit, met)] at one size."""
    summary = section["summary"]
    rows = []
    for metric, peer, limit, text in TARGETS:
        key = _pick(summary, peer[: -len("-fastest")], metric) if peer.endswith("-fastest") else peer
        s = summary.get(key, {}) if key else {}
        ratio = (s.get("ratio_vs_reference") or {}).get(metric) if s else None
        met = None if ratio is None else ratio["median"] <= limit
        rows.append((text, key, ratio, limit, met))
    return rows


def _order(keys):
    """CONFIGS' order, each baseline configuration right after its current one."""
    rank = list(CONFIGS)

    def position(k):
        base = current_key(k)
        return (rank.index(base) if base in rank else len(rank), is_baseline(k), k)

    return sorted(keys, key=position)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    mnist = results.get("mnist") or {}
    sizes = sorted(mnist, key=int)
    keys = _order({k for n in sizes for k, s in mnist[n]["summary"].items() if not s.get("failed")})
    if not keys:
        return False
    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=110)
    width = 0.8 / max(len(sizes), 1)
    x = np.arange(len(keys))
    for i, n in enumerate(sizes):
        summary = mnist[n]["summary"]
        med, lo, hi = [], [], []
        for k in keys:
            s = (summary.get(k) or {}).get("steady")
            if s:
                med.append(s["median"])
                lo.append(s["median"] - s["min"])
                hi.append(s["max"] - s["median"])
            else:
                med.append(np.nan)
                lo.append(0)
                hi.append(0)
        ax.bar(
            x + (i - (len(sizes) - 1) / 2) * width,
            med,
            width,
            yerr=[lo, hi],
            capsize=3,
            label=f"N = {int(n):,} ({mnist[n]['rounds']} rounds)",
        )
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    n_tn = sum(k.startswith("tinynode") for k in keys)
    if n_tn:
        ax.axvspan(-0.5, n_tn - 0.5, color="0.92", zorder=0)
        ax.text(
            (n_tn - 1) / 2,
            0.97,
            "tinynode",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=9,
            color="0.3",
        )
    ax.set_xticks(x)
    ax.set_xticklabels([label(k).replace(", ", ",\n", 1) for k in keys], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("median steady epoch (s, log scale)")
    ax.set_title("Lux tutorial workload: median steady epoch (epochs 2-9), bars: min-max over rounds")
    ax.grid(axis="y", which="both", alpha=0.3)
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, top * 2.2)  # room for the legend
    ax.legend(loc="upper right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def _machine_lines(m):
    v = m.get("versions", {})
    libs = ", ".join(f"{k} {v[k]}" for k in v if v[k])
    mem = m.get("memory_gib")
    return [
        f"- CPU: {m.get('cpu')} ({m.get('usable_cores')} usable cores of {m.get('cores')}), "
        f"{'' if mem is None else f'{mem:.1f} GiB'} memory, Linux {m.get('kernel')}, no GPU",
        f"- Python {m.get('python')}; {libs}",
        "- torch set to 2 threads (`torch.set_num_threads(2)`); JAX on the CPU (`JAX_PLATFORMS=cpu`); "
        "tinynode with one BLAS thread (its default: `tinynode.train.fit(blas_threads=1)`)",
    ] + _blas_lines(m)


def _blas_lines(m):
    b = m.get("blas")
    if not b:
        return []
    line = f"- NumPy's BLAS: {b['library']} {b['version']}, {b['kernel']} kernel"
    if b.get("pins_set"):
        pins = ", ".join(f"`{k}={v}`" for k, v in b["pins_set"].items())
        line += f"; this machine sets {pins} for old OpenBLAS builds, " + (
            "kept for the workers (`--keep-blas-pins`)"
            if b.get("pins_kept")
            else "which would hold a current OpenBLAS to an older kernel: the workers run without them "
            "(torch and JAX do not read them; `--keep-blas-pins` keeps them)"
        )
    return [line]


def floor_per_batch(b):
    """A lower bound (seconds) on tinynode's steady batch from its own bare calls (benchmarks/breakdown.py).

    Every forward evaluation and every backward VJP is made, at least, at its
    bare cost: the solver loops, the stage combinations and the error norms
    count as free, and so does the layers' plumbing: the rest of the batch is
    its bare calls (dense layers, loss, Adam, the batch). Backward: two VJPs
    from scratch (lambda's first stage
    and the initial step's probe), one stacked linearization per step
    (``(VJPs - 2) / 6`` steps) and the other VJPs through it.
    """
    budget, calls = b["budget"], b["calls"]
    steps = max(budget["backward_vjps"] - 2, 0) / 6
    forward = budget["forward_evaluations"] * calls["evaluation_s"]
    backward = (
        2 * calls["vjp_from_scratch_s"]
        + steps * calls["linearize_6_points_s"]
        + (budget["backward_vjps"] - 2) * calls["vjp_through_linearization_s"]
    )
    return forward, backward, calls["rest_bare_s"]


def _floor_verdict(results):
    """One sentence: is half of diffrax's batch below tinynode's floor? (from the stored numbers)."""
    breakdown = results.get("breakdown") or {}
    mnist = (results.get("mnist") or {}).get("1500")
    if not breakdown or not mnist:
        return []
    fastest = _pick(mnist["summary"], "diffrax", "steady")
    if fastest is None:
        return []
    lines = []
    for controller, b in breakdown.items():
        if b.get("failed"):
            continue
        budget = b["budget"]
        half = mnist["summary"][fastest]["steady"]["median"] / budget["batches_per_epoch"] / 2
        floor = sum(floor_per_batch(b))
        overhead = budget["batch_s"] - floor
        if floor > half:
            lines.append(
                f"with the {controller.upper()} controller the floor, {floor * 1e6:.0f} us, is above half "
                f"of diffrax's batch ({half * 1e6:.0f} us): no implementation making these calls "
                "reaches 0.5x"
            )
        else:
            lines.append(
                f"with the {controller.upper()} controller the floor, {floor * 1e6:.0f} us, is below half "
                f"of diffrax's batch ({half * 1e6:.0f} us), but reaching it would leave "
                f"{(half - floor) * 1e6:.0f} us for the solver loops and the plumbing that now take "
                f"{overhead * 1e6:.0f} us"
            )
    if not lines:
        return []
    return [
        "- What remains (table above): " + "; ".join(lines) + ". Closing that gap means fewer array calls than "
        "this algorithm makes or solver loops at almost no cost: in practice a compiled solver and vector "
        "field, which this project rules out."
    ]


def _breakdown_lines(results):
    breakdown = results.get("breakdown") or {}
    mnist = (results.get("mnist") or {}).get("1500")
    if not breakdown or not mnist:
        return []
    summary = mnist["summary"]
    fastest = _pick(summary, "diffrax", "steady")
    L = [
        "## Where tinynode's batch goes (N = 1,500)",
        "",
        "`python -m benchmarks.breakdown` (run by `--only breakdown`): the tutorial's training with "
        "`tinynode.train.fit`, InterpolatingAdjoint, each steady batch's time split into the NeuralODE's "
        "forward solve, its backward pass and the rest (two dense layers, loss, Adam, the batch), then the "
        "bare calls those passes are made of, at batch 128. The **floor** counts each forward evaluation "
        "and backward VJP at its bare cost, the rest of the batch as its bare calls (dense layers, loss, "
        'Adam, the batch: "rest bare" below), and the solver loops and the layers\' plumbing as free: '
        "this algorithm, making these NumPy calls, cannot be faster.",
        "",
        "| controller | batch (us) | ODE forward (us) | ODE backward (us) | rest (us) | evaluations / VJPs "
        "per batch | floor (us) | half of diffrax's fastest (us) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    calls_row = None
    for controller, b in breakdown.items():
        if b.get("failed"):
            L.append(f"| {controller.upper()} | failed | | | | | | |")
            continue
        budget = b["budget"]
        floor = sum(floor_per_batch(b))
        half = (
            "–"
            if fastest is None
            else f"{summary[fastest]['steady']['median'] / budget['batches_per_epoch'] / 2 * 1e6:.0f}"
        )
        L.append(
            f"| {controller.upper()} | {budget['batch_s'] * 1e6:.0f} | {budget['ode_forward_s'] * 1e6:.0f} | "
            f"{budget['ode_backward_s'] * 1e6:.0f} | {budget['rest_s'] * 1e6:.0f} | "
            f"{budget['forward_evaluations']:.1f} / {budget['backward_vjps']:.1f} | {floor * 1e6:.0f} | "
            f"{half} |"
        )
        calls_row = b["calls"]
    if calls_row:
        L += [
            "",
            "Bare calls at batch 128 (us): "
            + "; ".join(f"{k[:-2].replace('_', ' ')} {v * 1e6:.1f}" for k, v in calls_row.items())
            + ".",
            "",
        ]
    return L


def _size_table(section):
    summary = section["summary"]
    lines = [
        "| configuration | median steady epoch (s) | first epoch (s) | whole process (s) | "
        "NFE fwd / bwd per epoch | final train / test acc | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in _order(summary):
        s = summary[key]
        name = label(key)
        if key == REFERENCE:
            name = f"**{name}**"
        if s.get("failed"):
            lines.append(f"| {name} | failed | | | | | |")
            continue
        nfe = f"{_nfe(s['nfe_fwd'])} / {_nfe(s['nfe_bwd'])}"
        lines.append(
            f"| {name} | {_spread(s['steady'])} | {_spread(s['first'])} | {_spread(s['wall'])} | {nfe} | "
            f"{_pct(s['train_acc'])} / {_pct(s['test_acc'])} | "
            f"{_spread(s['maxrss_mib'], lambda v: f'{v:.0f}')} |"
        )
    return lines


def _ratio_table(section):
    summary = section["summary"]
    lines = [
        "| tinynode-interpolating / ... | median steady epoch | whole process | first epoch |",
        "|---|---|---|---|",
    ]
    for key in _order(summary):
        s = summary[key]
        if key == REFERENCE or s.get("failed") or not s.get("ratio_vs_reference"):
            continue
        r = s["ratio_vs_reference"]
        lines.append(
            f"| {label(key)} | {_ratio(r.get('steady'))} | {_ratio(r.get('wall'))} | {_ratio(r.get('first'))} |"
        )
    return lines


def _baseline_commit(record):
    """ "commit 4cd325a (its subject)" or the folder, from a section's ``baseline`` record."""
    if not record:
        return "an older checkout"
    if record.get("commit"):
        return f"commit `{record['commit'][:7]}` ({record.get('subject') or ''})".replace(" ()", "")
    return f"`{record.get('dir')}`"


def _baseline_lines(results):
    """The section comparing this tree with the baseline checkout, if any piece ran against one."""
    mnist = results.get("mnist") or {}
    sizes = [n for n in sorted(mnist, key=int) if any(is_baseline(k) for k in mnist[n]["summary"])]
    overhead = results.get("overhead") or {}
    if not sizes and BASELINE_SYSTEM not in overhead:
        return []
    record = next((mnist[n].get("baseline") for n in sizes if mnist[n].get("baseline")), None)
    record = record or (overhead.get(BASELINE_SYSTEM) or {}).get("baseline")
    L = [
        "## Against the baseline",
        "",
        f"The same workers with tinynode imported from {_baseline_commit(record)} (`python -m benchmarks.compare "
        "--baseline DIR`), interleaved with this tree's runs: each baseline run follows the run of the same "
        "configuration from this tree, in every round. Ratios are this tree / the baseline within each round "
        "(above 1: this tree is slower).",
        "",
    ]
    if sizes:
        L += [
            "| N | configuration | steady epoch, this tree (s) | steady epoch, baseline (s) | "
            "this tree / baseline: steady epoch | whole process | allowed (steady) | met |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for n in sizes:
            summary = mnist[n]["summary"]
            for key in _order(k for k in summary if is_baseline(k)):
                s, cur = summary[key], summary.get(current_key(key), {})
                if s.get("failed") or cur.get("failed"):
                    L.append(
                        f"| {int(n):,} | {LABELS.get(current_key(key), key)} | "
                        f"{'failed' if cur.get('failed') else _spread(cur.get('steady'))} | "
                        f"{'failed' if s.get('failed') else _spread(s.get('steady'))} | | | | |"
                    )
                    continue
                r = s.get("ratio_vs_current") or {}
                steady = r.get("steady")
                met = "–" if not steady else ("yes" if steady["median"] <= BASELINE_STEADY_LIMIT else "**no**")
                L.append(
                    f"| {int(n):,} | {LABELS.get(current_key(key), key)} | {_spread(cur.get('steady'))} | "
                    f"{_spread(s.get('steady'))} | {_ratio(steady)} | {_ratio(r.get('wall'))} | "
                    f"{BASELINE_STEADY_LIMIT:.2f}x | {met} |"
                )
        L += [""]
    if BASELINE_SYSTEM in overhead and "tinynode" in overhead:
        b = BASELINE_OVERHEAD_BATCH
        L += [
            f"Solver overhead at batch {b} (`benchmarks/solver_overhead.py`'s measure, see *Solver overhead* "
            "below), this tree beside the baseline. Both use the same floor, the field bound for a solve with "
            "its bias tiles (the fastest evaluation either version has); issue 3's target of 1.3 was set with "
            "the floor `field(t, y, p)` of its time, which skipped the tiles and was about 30 % slower, so "
            "neither version meets 1.3 on this stricter floor. Counted by valgrind (instructions, which do not "
            "depend on the machine's load), this tree does 2.7 % more work than the baseline per NeuralODE "
            "forward solve at batch 128, 2.3 % more per whole training batch, and 0.7 % less per solve at "
            "batch 1024; the timed ratio at batch 1024 (1.5-2x, reproducible in this harness only) was traced "
            "to memory layout (fresh per-solve buffers at the same page offsets), not to work:",
            "",
            "| solve | this tree | baseline | allowed (this tree) | met |",
            "|---|---|---|---|---|",
        ]
        cur_doc, base_doc = overhead["tinynode"], overhead[BASELINE_SYSTEM]
        cur = {r["batch"]: r for r in cur_doc.get("rows", [])}.get(b)
        base = {r["batch"]: r for r in base_doc.get("rows", [])}.get(b)
        L.append(f"| forward (Tsit5, PI), floor with tiles | {_overhead_cell(cur)} | {_overhead_cell(base)} | | |")
        if cur and "overhead_untiled" in cur:
            untiled = cur["overhead_untiled"]
            base_untiled = (base or {}).get("overhead_untiled")
            met = "yes" if untiled <= BASELINE_OVERHEAD_LIMIT else "**no**"
            L.append(
                f"| forward (Tsit5, PI), issue 3's floor (no tiles) | {untiled:.2f} | "
                f"{'–' if base_untiled is None else f'{base_untiled:.2f}'} | {BASELINE_OVERHEAD_LIMIT:.2f} | {met} |"
            )
        cur_a = {r["sensealg"]: r for r in cur_doc.get("adjoint_rows", []) if r["batch"] == b}
        base_a = {r["sensealg"]: r for r in base_doc.get("adjoint_rows", []) if r["batch"] == b}
        for name in dict.fromkeys([*cur_a, *base_a]):
            L.append(
                f"| {name} adjoint (backward pass) | {_overhead_cell(cur_a.get(name))} | "
                f"{_overhead_cell(base_a.get(name))} | | |"
            )
        L += [""]
    return L


def _overhead_cell(row):
    """An overhead (with its min–max over rounds when there were several)."""
    if row is None:
        return "–"
    if "overhead_min" in row and row["overhead_min"] != row["overhead_max"]:
        return f"{row['overhead']:.2f} ({row['overhead_min']:.2f}–{row['overhead_max']:.2f})"
    return f"{row['overhead']:.2f}"


def write_docs(results, docs_path, plot_path):
    m = results.get("machine", {})
    mnist = results.get("mnist") or {}
    sizes = sorted(mnist, key=int)
    have_plot = plot(results, plot_path) if sizes else False
    L = [
        "# Benchmarks: tinynode and its peers on the tutorial's workload",
        "",
        "<!-- generated by `python -m benchmarks.compare` (benchmarks/report.py) from "
        "benchmarks/results/latest.json: do not edit by hand -->",
        "",
        "tinynode, [torchdiffeq](https://github.com/rtqichen/torchdiffeq), "
        "[diffrax](https://github.com/patrick-kidger/diffrax) and "
        "[torchode](https://github.com/martenlienen/torchode) train the Lux tutorial's MNIST Neural ODE, "
        "side by side, on one machine. Regenerate this page (about 9 minutes on 2 cores) with",
        "",
        "```",
        'pip install -e ".[bench]"',
        "python -m benchmarks.compare",
        "```",
        "",
        "(`--quick` for a 1-round smoke test at N = 1,500; `--rounds`, `--sizes`, `--configs`, `--only "
        "mnist|count|fashion|overhead|breakdown` for pieces; `--docs-only` rewrites this page from the stored "
        "results).",
        "",
        "## The machine",
        "",
    ]
    L += _machine_lines(m)
    pieces = results.get("pieces", {})
    if pieces:
        L += [
            "- measured: "
            + "; ".join(f"{k} on {v['started'][:16].replace('T', ' ')}" for k, v in sorted(pieces.items()))
        ]
    L += [
        "",
        "The machine is shared and noisy: compare ratios measured within one round rather than "
        "absolute times across runs.",
        "",
        "## The workload",
        "",
        "Identical for every system: the first N images of tinynode's bundled 5,000-image MNIST sample, "
        "split in order 90/10 (`tinynode.data.train_test_split`); float32; Flatten → Dense(784⇒20, tanh) → "
        "NeuralODE(Dense(20⇒10, tanh) → Dense(10⇒10, tanh) → Dense(10⇒20, tanh), t ∈ [0, 1], "
        "rtol = atol = 1e-3, final state only, the whole batch as ONE ODE state with shared steps) → "
        "Dense(20⇒10); mean logit cross-entropy, Adam(0.001), batch 128, 9 epochs. Every system starts "
        "from the same initial weights (`tutorial_model().init(0)`) and sees the training batches in the "
        "same shuffled order (tinynode's `DataLoader(shuffle=True, seed=0)`), so the accuracies agree to "
        "rounding and the systems differ only in solver, autodiff and overhead. Accuracy on the training "
        "and test sets is measured after each epoch and is not part of the epoch time (as in the Lux "
        "tutorial), but is part of the whole-process time.",
        "",
        "| configuration | solver, controller, gradient |",
        "|---|---|",
    ]
    baselines = {k for n in sizes for k in mnist[n]["summary"] if is_baseline(k)}
    for key in _order(set(CONFIGS) | baselines):
        L.append(f"| {label(key)} | {config_of(key)[4]} |")
    L += [
        "",
        "- **epoch**: the training batches of one epoch (forward, loss, gradient, Adam step); "
        "**median steady epoch**: the median of epochs 2-9 of a run; **first epoch** includes diffrax's JIT "
        "compilation of the train step.",
        "- **whole process**: wall time of the worker process measured from outside, from its start "
        "(interpreter, imports) to its exit after the 9th epoch and its evaluation; **peak RSS**: "
        "`ru_maxrss` of that process (`os.wait4`).",
        "- Each configuration runs in its own process; the runner interleaves them (A B C … A B C …) for "
        "several rounds. Cells give the median over rounds and (min–max); **ratios** are "
        "tinynode-interpolating / peer, computed within each round, then summarised the same way.",
        "- **NFE** per epoch: evaluations of the vector field. tinynode counts its own (forward evaluations; "
        "backward VJPs + evaluations). torchdiffeq and torchode: a counter in the vector field (backward = "
        "calls during `loss.backward()`; 0 for direct backprop and AutoDiffAdjoint, which replay the "
        "recorded graph instead of calling the vector field). diffrax reports no evaluation counts: the "
        'forward number in the timed runs is computed from `sol.stats["num_steps"]` as 6 × num_steps + 1 '
        "per solve; the backward pass is not reported (diffrax #195). The real counts, from a "
        "`jax.debug.callback` in the vector field, are under *Counted NFE* below.",
        "",
    ]

    for n in sizes:
        sec = mnist[n]
        sz = sec["sizes"]
        L += [
            f"## N = {int(n):,} ({sz['n_train']:,} training / {sz['n_test']:,} test images, "
            f"{-(-sz['n_train'] // 128)} batches per epoch; {sec['rounds']} rounds)",
            "",
        ]
        L += _size_table(sec)
        L += ["", f"Ratios at N = {int(n):,} (below 1: tinynode is faster):", ""]
        L += _ratio_table(sec)
        L += [""]

    if have_plot:
        L += [
            "## Median steady epoch per configuration",
            "",
            f"![median steady epoch per configuration, with min-max bars](img/{os.path.basename(plot_path)})",
            "",
        ]

    if "1500" in mnist:
        L += [
            "## Targets (N = 1,500)",
            "",
            "| target | against | measured ratio, median (min–max) | met |",
            "|---|---|---|---|",
        ]
        for text, key, ratio, _limit, met in target_rows(mnist["1500"]):
            L.append(
                f"| {text} | {label(key) if key else '–'} | {_ratio(ratio)} | "
                f"{'–' if met is None else ('yes' if met else '**no**')} |"
            )
        L += [
            "",
            '"Fastest configuration" is the peer\'s configuration with the smallest median of the '
            "metric in question at this size.",
            "",
        ]

    L += _baseline_lines(results)
    L += scaling_lines(os.path.join(os.path.dirname(plot_path), "benchmark_scaling.png"))
    L += _breakdown_lines(results)

    count = results.get("count") or {}
    if count:
        L += [
            "## Counted NFE (diffrax)",
            "",
            "One epoch at N = 1,500 (11 batches), untimed, with a counting `jax.debug.callback` in the vector "
            "field: forward = calls in a jitted inference solve of each batch, backward = calls in the jitted "
            "train step minus the forward ones.",
            "",
            "| configuration | forward, counted | forward, 6 × num_steps + 1 | backward, counted |",
            "|---|---|---|---|",
        ]
        for key in _order(count):
            c = count[key]
            if c.get("failed"):
                L.append(f"| {label(key)} | failed | | |")
            else:
                L.append(f"| {label(key)} | {c['fwd']} | {c['fwd_formula']} | {c['bwd']} |")
        L += [""]

    fashion = results.get("fashion") or {}
    if fashion and not fashion.get("skipped"):
        sz = fashion["sizes"]
        L += [
            f"## Fashion-MNIST, full size: one epoch ({sz['n_train']:,} training / {sz['n_test']:,} test "
            f"images, {-(-sz['n_train'] // 128)} batches)",
            "",
            f"tinynode-interpolating against each peer's fastest configuration ({fashion['chosen_by']}); "
            f"{fashion['rounds']} interleaved round(s). The data come from Debian's `dataset-fashion-mnist` "
            '(`tinynode.data.load_mnist("fashion-mnist", download=False)`); whole process includes reading '
            "the data, and evaluating on all training and test images after the epoch.",
            "",
            "| configuration | epoch (s) | whole process (s) | NFE fwd / bwd | train / test acc | peak RSS (MiB) | "
            "tinynode / this: epoch, whole process |",
            "|---|---|---|---|---|---|---|",
        ]
        summary = fashion["summary"]
        for key in fashion["order"]:
            s = summary.get(key, {})
            if s.get("failed"):
                L.append(f"| {label(key)} | failed | | | | | |")
                continue
            r = s.get("ratio_vs_reference") or {}
            ratio = "–" if key == REFERENCE else f"{_ratio(r.get('first'))}, {_ratio(r.get('wall'))}"
            L.append(
                f"| {label(key)} | {_spread(s['first'])} | {_spread(s['wall'])} | "
                f"{_nfe(s['nfe_fwd'])} / {_nfe(s['nfe_bwd'])} | {_pct(s['train_acc'])} / "
                f"{_pct(s['test_acc'])} | {_spread(s['maxrss_mib'], lambda v: f'{v:.0f}')} | {ratio} |"
            )
        L += [""]
    elif fashion.get("skipped"):
        L += ["## Fashion-MNIST", "", f"Skipped: {fashion['skipped']}", ""]

    overhead = results.get("overhead") or {}
    if overhead:
        L += [
            "## Solver overhead against its floor (forward solve)",
            "",
            "overhead = time per forward solve / (nf × time of one bare evaluation of the vector field), for "
            "the workload's ODE block with its initial weights on a (B, 20) float32 state (tanh of normal "
            "noise), [0, 1], rtol = atol = 1e-3, no gradient. 1.0 would mean the solver loop is free. "
            "tinynode, torchdiffeq and torchode: nf bare evaluations called from Python as the floor; for "
            "tinynode the fastest one it has, the field bound once for the solve (`field.bind(...).into`, "
            "the MLP fast path with its bias tiles; `field.freeze(...).into` for a checkout from before the "
            "core redesign, so both floors are the same code). Until the redesign the floor was `field(t, y, p)`, "
            "which then took a cached fast path without tiles (about 30 % slower than the tiled one), so the "
            "ratios before it read lower than these for the same solve. "
            "diffrax: the whole solve is one compiled call, so its floor is nf dependent evaluations in one "
            "jitted `fori_loop` (per-call dispatch excluded on both sides), and its nf is 6 × num_steps + 1.",
            "",
        ]
        systems = [s for s in ("tinynode", BASELINE_SYSTEM, "torchdiffeq", "diffrax", "torchode") if s in overhead]
        batches = []
        for s in systems:
            for r in overhead[s].get("rows", []):
                if r["batch"] not in batches:
                    batches.append(r["batch"])
        L.append("| system | " + " | ".join(f"B = {b}" for b in batches) + " |")
        L.append("|---|" + "---|" * len(batches))
        for s in systems:
            o = overhead[s]
            if o.get("failed"):
                L.append(f"| {s} | failed |" + " |" * (len(batches) - 1))
                continue
            by = {r["batch"]: r for r in o["rows"]}
            cells = [
                f"{by[b]['overhead']:.2f} (nf {by[b]['nf']}, {by[b]['solve_us'] / 1000:.2f} ms)" if b in by else "–"
                for b in batches
            ]
            L.append(f"| {s} | " + " | ".join(cells) + " |")
        L += [
            "",
            "Cells: overhead (nf per solve, time per solve). The systems take different step sequences "
            "on this problem (tinynode's PI controller versus the peers' I controllers), hence different nf.",
            "",
        ]
        adjoint = (overhead.get("tinynode") or {}).get("adjoint_rows") or []
        if adjoint:
            L += [
                "### tinynode's adjoints against their floor (the backward pass alone)",
                "",
                "overhead = time per pullback / (the same vector-field calls made bare): `nvjp` VJPs for "
                "InterpolatingAdjoint and DiscreteAdjoint, state-only plus full VJPs for GaussAdjoint, "
                "fused value-and-VJP calls for BacksolveAdjoint (`benchmarks/solver_overhead.py`). Same "
                "problem as above, cotangent of normal noise.",
                "",
            ]
            names = list(dict.fromkeys(r["sensealg"] for r in adjoint))
            batches_a = list(dict.fromkeys(r["batch"] for r in adjoint))
            L.append("| sensealg | " + " | ".join(f"B = {b}" for b in batches_a) + " |")
            L.append("|---|" + "---|" * len(batches_a))
            for name in names:
                by = {r["batch"]: r for r in adjoint if r["sensealg"] == name}
                cells = [
                    f"{by[b]['overhead']:.2f} ({by[b]['calls']} calls, {by[b]['pullback_us'] / 1000:.2f} ms)"
                    if b in by
                    else "–"
                    for b in batches_a
                ]
                L.append(f"| {name} | " + " | ".join(cells) + " |")
            L += ["", "Cells: overhead (vector-field calls per pullback, time per pullback).", ""]

    L += (
        [
            "## Reading the numbers",
            "",
            "- At rtol = atol = 1e-3 each solve takes only 2-4 steps on a (128, 20) state: the epoch is "
            "dominated by per-call overhead (Python, the framework's dispatch, autograd bookkeeping), not by "
            "arithmetic. That is the regime the tutorial is in; larger states and tighter tolerances shift "
            "the balance toward FLOPs.",
            "- tinynode's PI controller (OrdinaryDiffEq's coefficients) takes more steps here than the peers' "
            "I controllers; `tinynode, InterpolatingAdjoint, I controller` isolates that difference.",
            "- diffrax pays JIT compilation in the first epoch and again for each new batch shape in "
            "evaluation; its steady epochs are compiled code.",
            "- torchdiffeq has no Tsit5 on PyPI; dopri5 is its closest method.",
            "- Where tinynode does not win by the margin asked (its steady epoch against diffrax's compiled "
            "one), profiles of a steady epoch (cProfile, and `benchmarks/breakdown.py` below) showed the ODE's "
            "backward pass at about half of a batch, its forward solve at a third and the rest at a sixth, "
            "with NumPy's per-call dispatch, not arithmetic, setting the pace. What was changed, each step "
            "re-measured on an idle machine, in two rounds. First: BLAS kept to one thread while training; a "
            "fused path for Dense-stack vector fields (an evaluation 18.5 -> 11 us, a VJP 47 -> 33 us at batch "
            "128); the dense output evaluated as a per-step polynomial; inference through `Chain.__call__` "
            "keeping no backward data (steady epoch 0.0184 -> 0.0149 s). Second: the adjoint's stages "
            "linearized in one stacked pass per backward step, so that a stage's VJP is a product per layer "
            "(29 -> 15 us); the field bound for each solve (now `tinynode.fastmlp.MLPField`), adding its biases "
            "as contiguous tiles instead of "
            "broadcasting them over the rows (a broadcast `+ b` of width 10 cost 1.7 us, more than the layer's "
            "product) and writing f straight into the solver's stage rows (an evaluation 10.5 -> 7.9 us); the "
            "adjoint's stages written into the stage rows too; the benchmark's workers freed from this "
            "machine's OpenBLAS kernel pin (the 784 x 20 layer 48 -> 30 us). Steady epoch 0.0151 -> about "
            "0.012 s. Tried and dropped: integrating mu as quadrature variables (as CVODES does), with one "
            "stacked parameter VJP per step instead of one per stage. It was slower (75 us per step against "
            "45): the error estimate needs a second weighted sum, and at 768 rows these products cost as much "
            "per row as six small ones.",
        ]
        + _floor_verdict(results)
        + [
            "- Raw per-run data (every epoch of every round, with the load average before each run): "
            "`benchmarks/results/latest.json`.",
            "",
        ]
    )
    with open(docs_path, "w") as f:
        f.write("\n".join(L))
