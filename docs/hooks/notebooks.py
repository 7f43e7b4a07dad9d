"""MkDocs hooks for the notebook pages: their figures are drawn, and their links lead somewhere.

**Figures.** mkdocs-jupyter executes each notebook in a Jupyter kernel, which inherits this
process's environment. The kernel captures figures with matplotlib's inline backend, but only when
``MPLBACKEND`` does not name another one: with ``MPLBACKEND=Agg`` (usual for headless test runs)
``plt.show()`` draws nothing and every figure vanishes from the site without an error. So the
build sets the inline backend for its kernels, whatever the caller's environment says.

**Links.** A notebook in ``notebooks/`` links to ``../docs/solvers.md`` or ``03_the_adjoint_method.ipynb``,
relative to its own folder, and that is right where people open it. mkdocs-jupyter renders the
notebook to HTML as it is, so MkDocs never sees those links: on the page
``notebooks/02_tsit5_from_scratch/`` they would point nowhere. This hook maps each one to the
page it means (another notebook, a page of ``docs/``, with its ``#anchor``), or, for a file of the
repository that is no page (``../tinynode/step.py``), to that file on GitHub; a link to nothing
at all is a warning, so ``mkdocs build --strict`` fails on it.
"""

import logging
import os
import posixpath
import re
from pathlib import Path
from urllib.parse import urlsplit

from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.notebooks")

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"

HREF = re.compile(r'(<a\s[^>]*?href=")([^"]*)(")')


def on_config(config):
    os.environ["MPLBACKEND"] = INLINE_BACKEND  # read by the kernels the build starts
    return config


def on_page_content(html: str, page: Page, config, files: Files) -> str:
    if not (page.file.src_uri.startswith("notebooks/") and page.file.src_uri.endswith(".ipynb")):
        return html
    root = Path(config["config_file_path"]).parent

    def fix(match: re.Match) -> str:
        return match.group(1) + _site_link(match.group(2), page, files, root, config) + match.group(3)

    return HREF.sub(fix, html)


def _site_link(href: str, page: Page, files: Files, root: Path, config) -> str:
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path or href.startswith("/"):
        return href  # a web address, an anchor on this page, or site-absolute: as written
    # The notebook's folder in the repository is notebooks/, and docs/notebooks is a symlink to
    # it, so its src_uri is also its path in the repository; the link is read from there.
    target = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), parts.path))
    docs = Path(config["docs_dir"]).resolve().relative_to(root.resolve()).as_posix() + "/"
    src_uri = target.removeprefix(docs) if target.startswith(docs) else target
    fragment = "#" + parts.fragment if parts.fragment else ""
    file = files.get_file_from_path(src_uri) if target.startswith((docs, "notebooks/")) else None
    if file is not None:
        return file.url_relative_to(page.file) + fragment
    if (root / target).exists() and config.get("repo_url"):
        return config["repo_url"].rstrip("/") + "/blob/main/" + target + fragment
    log.warning("notebook %s links to %r, which is neither a page of the site nor a file", page.file.src_uri, href)
    return href
