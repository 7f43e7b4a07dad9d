"""The code in the README and the docs runs as written."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ["README.md"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md"))


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("page", PAGES)
def test_python_examples_run(page, capsys):
    for block in python_blocks((ROOT / page).read_text()):
        exec(compile(block, page, "exec"), {"__name__": "__doc_example__"})
