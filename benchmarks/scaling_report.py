"""The scaling section of docs/benchmarks.md, from ``benchmarks/results/scaling-latest.json``.

Written by ``python -m benchmarks.scaling``; put on the page by :func:`benchmarks.report.write_docs`
(so ``python -m benchmarks.compare --docs-only`` refreshes it too). Kept apart from report.py
so that neither module grows with the other's results.
"""

import json
import os

RESULTS = os.path.join(os.path.dirname(__file__), "results", "scaling-latest.json")


def _point_size(point):
    d, h, b = (int(x) for x in point.split("x"))
    return b * (d * h + h * h + h * d)  # the multiply-adds of one evaluation


def plot(doc, path):
    """Time per gradient against the work of one evaluation, one line per system (log-log)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    points = sorted({r["point"] for r in doc["rows"]}, key=_point_size)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for system in dict.fromkeys(r["system"] for r in doc["rows"]):
        rows = {r["point"]: r for r in doc["rows"] if r["system"] == system and r.get("time_ms")}
        xs = [_point_size(p) for p in points if p in rows]
        ys = [rows[p]["time_ms"] / 1000 for p in points if p in rows]
        style = "-o" if system.startswith("tinynode") else "--s"
        ax.plot(xs, ys, style, label=system, markersize=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch x (DH + HH + HD): multiply-adds of one evaluation")
    ax.set_ylabel("seconds per gradient")
    ax.set_title("One gradient through a Neural ODE block, by problem size")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def scaling_lines(plot_path, results=RESULTS):
    """The page's section (a list of lines), or nothing when the benchmark has not been run."""
    if not os.path.exists(results):
        return []
    with open(results) as f:
        doc = json.load(f)
    have_plot = plot(doc, plot_path)
    m = doc.get("machine", {})
    L = [
        "## Scaling: one gradient, from the tutorial's size to wide nets and large batches",
        "",
        f"`python -m benchmarks.scaling` ({doc.get('rounds')} interleaved rounds, {doc.get('elapsed_s', 0):.0f} s, "
        f"{doc.get('date')}): {doc.get('workload')}. Points are D x H x batch. tinynode-default is "
        "`solve_with_vjp` with no options: its automatic choices (DiscreteAdjoint, IController, BLAS threads by "
        "size); tinynode-tutorial is the tutorial's PIController and InterpolatingAdjoint on 1 BLAS thread "
        "(the defaults before issue 15). The peers run at their fastest "
        "settings (torch with 2 threads). GFLOP/s counts the vector-field work tinynode did; this machine "
        f"multiplies float32 2048 x 2048 matrices at {m.get('gflops_1t', 0):.0f} GFLOP/s with 1 BLAS thread and "
        f"{m.get('gflops_2t', 0):.0f} with 2.",
        "",
        "| point | system | time (ms) | / fastest peer | nf / nvjp | GFLOP/s | % of matmul rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(doc["rows"], key=lambda r: _point_size(r["point"])):
        counts = r.get("counts") or {}
        nvjp = counts.get("nvjp")
        nvjp = "–" if nvjp is None else nvjp + counts.get("nvjp_params", 0)
        gf = f"{r['gflops']:.0f}" if r.get("gflops") else ""
        pct = f"{r['pct_peak']:.0f} %" if r.get("pct_peak") else ""
        L.append(
            f"| {r['point']} | {r['system']} | {r['time_ms']:.1f} | {r.get('ratio', 0):.2f} | "
            f"{counts.get('nf', '–')} / {nvjp} | {gf} | {pct} |"
        )
    L += [""]
    if have_plot:
        L += [f"![Time per gradient against problem size](img/{os.path.basename(plot_path)})", ""]
    L += _verdict(doc)
    return L


def _verdict(doc):
    """Issue 15's targets, as measured: every tinynode configuration's worst ratio, and its share of the
    matrix-multiply rate at the largest point."""
    largest = max((r["point"] for r in doc["rows"]), key=_point_size)
    L = ["| tinynode configuration | worst ratio to the fastest peer (target <= 1.0) | "
         f"% of matmul rate at {largest} (target >= 60 %) |", "|---|---|---|"]  # fmt: skip
    for system in dict.fromkeys(r["system"] for r in doc["rows"] if r["system"].startswith("tinynode")):
        rows = [r for r in doc["rows"] if r["system"] == system and r.get("ratio") is not None]
        at_largest = [r.get("pct_peak") for r in rows if r["point"] == largest]
        pct = f"{at_largest[0]:.0f} %" if at_largest and at_largest[0] else "–"
        L.append(f"| {system} | {max(r['ratio'] for r in rows):.2f} | {pct} |")
    return L + ["", 'tinynode-default is what a user gets without options (docs/adjoints.md, "Which method").', ""]
