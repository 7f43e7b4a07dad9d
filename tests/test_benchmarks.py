"""The benchmark scripts run (a smoke test: tiny sizes, no peers, nothing timed is asserted)."""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    res = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return res.stdout


def test_solver_overhead_reports_forward_and_every_adjoint():
    out = _run("benchmarks.solver_overhead", "--batch", "8", "--repeat", "2")
    for name in ("interpolating", "gauss", "backsolve", "discrete"):
        assert name in out
    assert "overhead" in out


def test_the_page_renders_from_stored_results(tmp_path):
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import report
    finally:
        sys.path.remove(str(ROOT))
    results = json.loads((ROOT / "benchmarks" / "results" / "latest.json").read_text())
    page, png = tmp_path / "benchmarks.md", tmp_path / "plot.png"
    report.write_docs(results, str(page), str(png))
    text = page.read_text()
    assert "## Targets (N = 1,500)" in text and "| median steady epoch" in text


def test_gpu_benchmark_runs_its_cpu_paths(tmp_path):
    out = _run(
        "benchmarks.gpu",
        "--device",
        "cpu",
        "--quick",
        "--configs",
        "tinynode",
        "tinynode-cpu",
        "--json",
        str(tmp_path / "gpu.json"),
    )
    assert "median throughput" in out
    rows = json.loads((tmp_path / "gpu.json").read_text())["steps"]
    assert {r["config"] for r in rows} == {"tinynode", "tinynode-cpu"}
    assert all(r["images_per_s"] > 0 for r in rows)


def test_breakdown_accounts_for_the_whole_batch(tmp_path):
    out = _run(
        "benchmarks.breakdown", "--n", "400", "--epochs", "2", "--repeat", "3", "--json", str(tmp_path / "b.json")
    )
    assert "ODE backward pass" in out
    budget = json.loads((tmp_path / "b.json").read_text())["budget"]
    assert budget["forward_evaluations"] >= 7 and budget["backward_vjps"] >= 7  # Tsit5: 1 + 6 per step
    # the timed passes are the training ones only (not evaluation's solves): they fit inside the batch
    assert 0 < budget["ode_forward_s"] + budget["ode_backward_s"] < budget["batch_s"]
