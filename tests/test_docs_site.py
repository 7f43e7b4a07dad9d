"""The documentation site builds in strict mode (every warning, broken link or bad docstring fails),
with every notebook executed on its own page, MathJax on every page, and nothing from the internet."""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
MATHJAX = ("javascripts/mathjax.js", "javascripts/mathjax/tex-svg-full.js")  # the config first, then MathJax


def notebook_page(stem):
    return f"notebooks/{stem}.ipynb"


def nav_pages(nav):
    """Every page of the nav, in order (the nav is nested lists of {title: page or list})."""
    for item in nav:
        for value in item.values() if isinstance(item, dict) else [item]:
            yield from nav_pages(value) if isinstance(value, list) else [value]


def learning_path_notebooks():
    """The notebooks docs/learning-path.md links, in the order it first links them."""
    links = re.findall(r"\]\((notebooks/[^)#]+\.ipynb)", (DOCS / "learning-path.md").read_text())
    return list(dict.fromkeys(pathlib.PurePosixPath(link).stem for link in links))


def code_cells(stem):
    cells = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


@pytest.mark.slow
def test_docs_build_strict(tmp_path):
    """Builds the site as CI does (CI=true: the notebooks' fast mode; about a minute on 2 cores)
    and reads what came out. MPLBACKEND=Agg is set on purpose: the build must still draw the
    notebooks' figures (docs/hooks/notebooks.py gives its kernels the inline backend)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("mkdocs_jupyter")
    env = dict(os.environ, CI="true", MPLBACKEND="Agg", NO_MKDOCS_2_WARNING="1")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # never the user's cache, never the network
    site = tmp_path / "site"
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for page in (
        "index.html",
        "learning-path/index.html",
        "api/index.html",
        "adjoints/index.html",
        "performance/index.html",
        "benchmarks/index.html",
    ):
        assert (site / page).exists(), page

    for stem in NOTEBOOKS:  # a page per notebook, executed, with its figures
        page = site / "notebooks" / stem / "index.html"
        assert page.exists(), f"notebook {stem} has no page in the site"
        html = page.read_text()
        cells = code_cells(stem)
        executed = re.findall(r'jp-InputPrompt jp-InputArea-prompt">In(?:\s|&nbsp;)\[(\d+)\]:', html)
        assert len(executed) == len(cells), f"{stem}: {len(executed)} of {len(cells)} code cells executed"
        figures = len(re.findall(r'<img [^>]*src="data:image/png', html))
        shown = sum("plt.show()" in cell for cell in cells)
        assert figures >= shown, f"{stem}: {figures} figures on the page, {shown} cells show one"
        stale = re.findall(r'href="([^":#]*\.(?:md|ipynb)(?:#[^"]*)?)"', html)  # docs/hooks/notebooks.py maps them
        assert not stale, f"{stem}: links written for Jupyter left as they are: {stale}"
    assert "Training Accuracy" in (site / "notebooks" / "01_mnist_neural_ode" / "index.html").read_text()

    learning_path = (site / "learning-path" / "index.html").read_text()
    for stem in NOTEBOOKS:
        assert f'href="../notebooks/{stem}/"' in learning_path, f"the learning path does not link {stem}"

    pages = sorted(site.rglob("*.html"))
    assert len(pages) > len(NOTEBOOKS) + 10
    for page in pages:  # MathJax on every page, from the site itself
        html = page.read_text()
        scripts = re.findall(r'<script src="([^"]*)"', html)
        ours = [s for s in scripts if s.endswith(MATHJAX)]
        assert [s.split("javascripts/", 1)[1] for s in ours] == [m.split("javascripts/", 1)[1] for m in MATHJAX], (
            f"{page.relative_to(site)} does not load MathJax: {scripts}"
        )
        for src in ours:
            target = site / src.lstrip("/") if src.startswith("/") else page.parent / src
            assert target.resolve().is_file(), f"{page.relative_to(site)} loads {src}, which is not in the site"
        outside = re.findall(r'<(?:script|link|img)\b[^>]*(?:src|href)="((?:https?:)?//[^"]*)"', html)
        outside = [url for url in outside if not url.startswith("https://github.com/")]
        assert not outside, f"{page.relative_to(site)} loads from the internet: {outside}"


def test_docs_config_valid_as_documented():
    """The README's build command, as written, passes MkDocs' configuration checks
    (site_dir outside docs_dir, every nav page present) without building."""
    config = pytest.importorskip("mkdocs.config")
    cfg = config.load_config(str(ROOT / "mkdocs.yml"), strict=True)
    site, docs = pathlib.Path(cfg["site_dir"]), pathlib.Path(cfg["docs_dir"])
    assert docs not in site.parents and site != docs
    assert (ROOT / ".gitignore").read_text().count("/site/") == 1


def test_every_notebook_is_a_page_in_learning_path_order():
    """Each notebook in notebooks/ is in the nav and linked from the learning path, in one order;
    the pages reach the notebooks through the symlink docs/notebooks -> ../notebooks."""
    config = pytest.importorskip("mkdocs.config")
    cfg = config.load_config(str(ROOT / "mkdocs.yml"))
    assert (DOCS / "notebooks").is_symlink() and os.readlink(DOCS / "notebooks") == "../notebooks"
    in_nav = [pathlib.PurePosixPath(p).stem for p in nav_pages(cfg["nav"]) if p.endswith(".ipynb")]
    missing, extra = sorted(set(NOTEBOOKS) - set(in_nav)), sorted(set(in_nav) - set(NOTEBOOKS))
    assert not missing and not extra, f"mkdocs.yml's nav: add {missing}, remove {extra} (one line per notebook)"
    linked = learning_path_notebooks()
    assert linked == in_nav, f"docs/learning-path.md links {linked}; it must link every notebook, in the nav's order"
    plugin = cfg["plugins"]["mkdocs-jupyter"].config
    assert plugin["execute"] and not plugin["allow_errors"] and not plugin["cache"]
    assert all(pathlib.PurePath(DOCS, notebook_page(stem)).match(plugin["include"][0]) for stem in NOTEBOOKS)


def test_mathjax_is_vendored_and_configured_for_every_page():
    """MathJax 3 is in the site itself (no CDN: the maths renders offline), with its licence,
    loaded after its configuration on every page."""
    config = pytest.importorskip("mkdocs.config")
    cfg = config.load_config(str(ROOT / "mkdocs.yml"))
    assert [str(s) for s in cfg["extra_javascript"]] == list(MATHJAX)
    mathjax = (DOCS / MATHJAX[1]).read_text()
    assert mathjax.startswith("(function(){") and len(mathjax) > 1_000_000  # the real bundle, not a pointer
    assert "Apache License" in (DOCS / "javascripts/mathjax/LICENSE").read_text()
    setup = (DOCS / MATHJAX[0]).read_text()
    for selector in (".arithmatex", ".jp-RenderedMarkdown"):  # Markdown pages and notebook pages
        assert selector in setup
    assert "generic: true" in (ROOT / "mkdocs.yml").read_text()  # arithmatex's output is what it typesets
