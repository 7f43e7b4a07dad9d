import configparser
import pathlib
import subprocess
import sys

import tinynode

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_version_is_a_string():
    assert isinstance(tinynode.__version__, str) and tinynode.__version__.count(".") >= 2


def test_numpy_is_the_only_runtime_dependency():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    requires = [r.strip() for r in cfg["options"]["install_requires"].split("\n") if r.strip()]
    assert [r.split(">")[0].split("=")[0] for r in requires] == ["numpy"]
    extras = cfg["options.extras_require"]
    assert "cupy-cuda12x" in extras["gpu"]
    for name in ("pytest", "hypothesis", "scipy"):
        assert name in extras["test"]


def test_import_pulls_in_nothing_heavy():
    code = ("import sys, tinynode; bad = [m for m in ('scipy', 'cupy', 'hypothesis', 'pytest') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_top_level_layout():
    for name in ("setup.cfg", "pyproject.toml", "tinynode", "tests", "notebooks", "docs",
                 "benchmarks", ".ci", "README.md", "LICENSE"):
        assert (ROOT / name).exists(), name
