import configparser
import pathlib
import subprocess
import sys

import tinynode

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_version_is_a_string():
    assert isinstance(tinynode.__version__, str) and tinynode.__version__.count(".") >= 2


def test_numpy_and_threadpoolctl_are_the_only_runtime_dependencies():
    """threadpoolctl (pure Python, no dependencies) sets the BLAS threads by problem size (tinynode.threads)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    requires = [r.strip() for r in cfg["options"]["install_requires"].split("\n") if r.strip()]
    assert [r.split(">")[0].split("=")[0] for r in requires] == ["numpy", "threadpoolctl"]
    extras = cfg["options.extras_require"]
    assert "cupy-cuda12x" in extras["gpu"]
    for name in ("pytest", "hypothesis", "scipy"):
        assert name in extras["test"]


def test_import_pulls_in_nothing_heavy():
    code = (
        "import sys, tinynode; bad = [m for m in ('scipy', 'cupy', 'hypothesis', 'pytest', 'threadpoolctl') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_top_level_layout():
    for name in (
        "setup.cfg",
        "pyproject.toml",
        "tinynode",
        "tests",
        "notebooks",
        "docs",
        "benchmarks",
        ".ci",
        "README.md",
        "LICENSE",
    ):
        assert (ROOT / name).exists(), name


def test_the_code_is_linted_and_formatted():
    """ruff (configured in pyproject.toml) finds nothing in the library, the tests or the benchmarks."""
    paths = ["tinynode", "tests", "benchmarks"]
    for command in (["check", *paths], ["format", "--check", *paths]):
        res = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 0, f"ruff {' '.join(command)}:\n{res.stdout[-3000:]}{res.stderr[-1000:]}"


def test_tinynode_is_readable_in_one_sitting():
    """No function in tinynode/ over 80 lines, no module over 400 (docs/architecture.md)."""
    import ast

    too_long = []
    for path in sorted((ROOT / "tinynode").rglob("*.py")):
        source = path.read_text()
        if source.count("\n") > 400:
            too_long.append(f"{path.name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                too_long.append(f"{path.name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not too_long, too_long


def _imports_of(path, module):
    """The modules ``module`` (at ``path``) imports, relative imports resolved (``from x import y``
    counts both ``x`` and ``x.y``, since y may be a module)."""
    import ast

    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def test_no_two_modules_import_each_other():
    """No import cycle of two modules in tinynode/ or benchmarks/ (a package's __init__, which
    gathers its submodules, aside)."""
    imports = {}
    for package in ("tinynode", "benchmarks"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name != "__init__.py":
                module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                imports[module] = _imports_of(path, module)
    cycles = sorted({tuple(sorted((a, b))) for a in imports for b in imports[a] if a in imports.get(b, ())})
    assert not cycles, cycles
