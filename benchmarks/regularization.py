"""What each regulariser buys and costs (tinynode/regularizers.py), measured by training.

    python -m benchmarks.regularization [--seeds 3] [--only tutorial|growth] [--docs-only]

Two workloads on the bundled 5,000-image MNIST sample (4,500 to train, 500 to test), batch 128, Adam(0.001):

* ``tutorial``: the Lux tutorial's model (tanh-bounded 20-10-10-20 field, t in [0, 1],
  Tsit5 at rtol = atol = 1e-3 with the PI controller, InterpolatingAdjoint), 9 epochs;
* ``growth``: an unbounded field Dense(20=>64, tanh) -> Dense(64=>20) over t in [0, 5],
  20 epochs, where unregularised training makes the evaluation count grow.

For each setting (the unregularised model, the I controller alone, each regulariser, and the
regularisers with the I controller) and each seed it records the prediction-time forward
evaluations per batch (scoring the test set with the training tolerances, after the last epoch),
the training forward evaluations and backward VJPs per batch, the training wall-clock (the
epochs' training parts) and the test accuracy. Settings run interleaved within each seed. The
results go to ``benchmarks/results/regularization-latest.json`` and the tables between the
markers of ``docs/regularization.md``.
"""

import argparse
import json
import pathlib
import statistics
import time

import tinynode as tn
from tinynode import nn
from tinynode.data import DataLoader, load_mnist, train_test_split
from tinynode.regularizers import parse_regularization
from tinynode.train import fit

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "regularization-latest.json"
DOCS = ROOT / "docs" / "regularization.md"
BEGIN, END = "<!-- regularization-results -->", "<!-- /regularization-results -->"

#: name -> (controller, sensealg, --regularize spec); the first is the baseline, the second "the I controller alone".
SETTINGS = {
    "unregularised": ("pi", "interpolating", ""),
    "I controller alone": ("i", "interpolating", ""),
    "kinetic 0.1": ("pi", "interpolating", "kinetic=0.1"),
    "jacobian 0.1": ("pi", "interpolating", "jacobian=0.1"),
    "error 1": ("pi", "discrete", "error=1"),
    "error_sampled 1": ("pi", "interpolating", "error_sampled=1"),
    "steer": ("pi", "interpolating", "steer={steer}"),
    "I + kinetic 0.1": ("i", "interpolating", "kinetic=0.1"),
    "I + error 1": ("i", "discrete", "error=1"),
    "I + error 0.3": ("i", "discrete", "error=0.3"),
    "I + error_sampled 1": ("i", "interpolating", "error_sampled=1"),
}
WORKLOADS = {
    "tutorial": dict(span=1.0, hidden=10, bounded=True, epochs=9, steer=0.5),
    "growth": dict(span=5.0, hidden=64, bounded=False, epochs=20, steer=2.0),
}


def model(workload, controller, sensealg, spec, seed):
    w = WORKLOADS[workload]
    out_act = "tanh" if w["bounded"] else None
    inner = [nn.Dense(10, 10, "tanh")] if w["bounded"] else []
    dynamics = nn.Chain(nn.Dense(20, w["hidden"], "tanh"), *inner, nn.Dense(w["hidden"], 20, out_act))
    ode = tn.NeuralODE(
        dynamics,
        (0.0, w["span"]),
        controller=tn.PIController() if controller == "pi" else tn.IController(),
        rtol=1e-3,
        atol=1e-3,
        sensealg=tn.InterpolatingAdjoint() if sensealg == "interpolating" else tn.DiscreteAdjoint(),
        regularize=parse_regularization(spec.format(steer=w["steer"]), seed=seed) if spec else None,
    )
    return nn.Chain(nn.Flatten(), nn.Dense(784, 20, "tanh"), ode, nn.Dense(20, 10))


def train_once(workload, setting, seed, data):
    (x_train, y_train), (x_test, y_test) = data
    m = model(workload, *SETTINGS[setting], seed)
    params, opt = m.init(seed), tn.Adam(0.001)
    state = opt.init(params)
    loaders = (DataLoader(x_train, y_train, batch_size=128, shuffle=True, seed=seed),
               DataLoader(x_train[:128], y_train[:128], batch_size=128),
               DataLoader(x_test, y_test, batch_size=128))  # fmt: skip
    history = fit(m, params, opt, state, *loaders, epochs=WORKLOADS[workload]["epochs"], out=None, progress=False)
    batches, last = len(loaders[0]), history[-1]
    return {
        "setting": setting, "seed": seed, "test_accuracy": last.test_accuracy, "predict_nf": last.predict_nf,
        "train_time": sum(r.time for r in history), "train_forward_nf": last.forward_nf / batches,
        "train_backward": (last.backward_nvjp + last.backward_nf) / batches,
        "predict_nf_by_epoch": [r.predict_nf for r in history], "regularization": last.regularization,
        "time_per_step": sum(r.time for r in history) / (batches * len(history)),
    }  # fmt: skip


def run(workloads, seeds, settings=tuple(SETTINGS)):
    images, labels = load_mnist(subset=5000, download=False, quiet=True)
    data = train_test_split(images, labels, at=0.9)
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "seeds": seeds, "workloads": {}}
    for workload in workloads:
        rows = []
        for seed in range(seeds):  # every setting once per seed: interleaved
            for setting in settings:
                rows.append(train_once(workload, setting, seed, data))
                r = rows[-1]
                print(f"{workload:8s} {setting:22s} seed {seed}: accuracy {100 * r['test_accuracy']:.1f} %, "
                      f"predict NFE {r['predict_nf']:.1f}, train {r['train_time']:.2f} s", flush=True)  # fmt: skip
        results["workloads"][workload] = {"config": WORKLOADS[workload], "runs": rows}
    return results


def summary(runs):
    """Per setting: the means over seeds (and the accuracy's spread)."""
    out = {}
    for setting in dict.fromkeys(r["setting"] for r in runs):
        mine = [r for r in runs if r["setting"] == setting]
        mean = {k: statistics.mean(r[k] for r in mine) for k in ("predict_nf", "train_time", "train_forward_nf",
                                                                  "train_backward", "time_per_step")}  # fmt: skip
        acc = [100 * r["test_accuracy"] for r in mine]
        mean["accuracy"], mean["accuracy_sd"] = statistics.mean(acc), (statistics.stdev(acc) if len(acc) > 1 else 0)
        mean["growth"] = statistics.mean(r["predict_nf_by_epoch"][-1] / r["predict_nf_by_epoch"][0] for r in mine)
        out[setting] = mean
    return out


def table(results, workload):
    s = summary(results["workloads"][workload]["runs"])
    base, i_alone = s["unregularised"], s["I controller alone"]
    lines = [
        "| setting | predict NFE / batch | vs unregularised | vs I alone | growth over training | train fwd / bwd "
        "per batch | training s | vs unregularised | ms per step | test accuracy % | vs unregularised |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in s.items():
        lines.append(
            f"| {name} | {m['predict_nf']:.1f} | {m['predict_nf'] / base['predict_nf']:.2f} | "
            f"{m['predict_nf'] / i_alone['predict_nf']:.2f} | {m['growth']:.2f}x | {m['train_forward_nf']:.1f} / "
            f"{m['train_backward']:.1f} | {m['train_time']:.2f} | {m['train_time'] / base['train_time']:.2f} | "
            f"{1e3 * m['time_per_step']:.2f} | {m['accuracy']:.2f} ± {m['accuracy_sd']:.2f} | "
            f"{m['accuracy'] - base['accuracy']:+.2f} |"
        )
    return "\n".join(lines)


def write_docs(results):
    text = DOCS.read_text()
    body = [f"Measured {results['date']} by `python -m benchmarks.regularization` ({results['seeds']} seeds; "
            "means over seeds, accuracy ± its standard deviation).", ""]  # fmt: skip
    for workload in results["workloads"]:
        w = WORKLOADS[workload]
        body += [f"**{workload}** (t in [0, {w['span']:g}], {w['epochs']} epochs, STEER half-width {w['steer']:g}):",
                 "", table(results, workload), ""]  # fmt: skip
    head, rest = text.split(BEGIN)
    DOCS.write_text(head + BEGIN + "\n" + "\n".join(body) + rest[rest.index(END) :])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", choices=sorted(WORKLOADS))
    parser.add_argument("--settings", help="comma-separated names of SETTINGS to run (default: all)")
    parser.add_argument("--docs-only", action="store_true", help="rewrite the docs tables from the stored results")
    parser.add_argument("--results", default=str(RESULTS), help="where the results go (default: %(default)s)")
    args = parser.parse_args(argv)
    path = pathlib.Path(args.results)
    if args.docs_only:
        results = json.loads(path.read_text())
    else:
        chosen = [s.strip() for s in args.settings.split(",")] if args.settings else list(SETTINGS)
        results = run([args.only] if args.only else list(WORKLOADS), args.seeds, chosen)
        path.write_text(json.dumps(results, indent=1))
    if path == RESULTS:
        write_docs(results)
    for workload in results["workloads"]:
        print(f"\n{workload}\n" + table(results, workload))


if __name__ == "__main__":
    main()
