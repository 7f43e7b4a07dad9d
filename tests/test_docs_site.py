"""The documentation site builds in strict mode (every warning, broken link or bad docstring fails)."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("mkdocs_jupyter")
    env = dict(os.environ, CI="true", MPLBACKEND="Agg", NO_MKDOCS_2_WARNING="1")
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for page in ("index.html", "tutorial/index.html", "api/index.html", "adjoints/index.html", "benchmarks/index.html"):
        assert (tmp_path / "site" / page).exists(), page
    assert "Training Accuracy" in (tmp_path / "site" / "tutorial" / "index.html").read_text()  # executed


def test_docs_config_valid_as_documented():
    """The README's build command, as written, passes MkDocs' configuration checks
    (site_dir outside docs_dir, every nav page present) without building."""
    config = pytest.importorskip("mkdocs.config")
    cfg = config.load_config(str(ROOT / "mkdocs.yml"), strict=True)
    site, docs = pathlib.Path(cfg["site_dir"]), pathlib.Path(cfg["docs_dir"])
    assert docs not in site.parents and site != docs
    assert (ROOT / ".gitignore").read_text().count("/site/") == 1
