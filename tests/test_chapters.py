"""Each chapter is a jupytext pair: the .py (reviewed source) and the executed .ipynb must agree."""

from pathlib import Path

import jupytext
import nbformat
import pytest

CHAPTERS = sorted((Path(__file__).resolve().parent.parent / "chapters").glob("[0-9][0-9]_*.py"))


def test_there_are_chapters():
    assert CHAPTERS, "no chapters/NN_slug.py found"


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_pair_in_sync(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `jupytext --to ipynb {py.name}` and execute it"
    source = jupytext.read(py)
    book = nbformat.read(ipynb, as_version=4)
    a = [(c.cell_type, c.source.strip()) for c in source.cells]
    b = [(c.cell_type, c.source.strip()) for c in book.cells]
    assert a == b, (f"{py.name} and {ipynb.name} differ: run `jupytext --sync {py.name}` "
                    "and re-execute the notebook")


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_page_is_executed_and_light(py):
    ipynb = py.with_suffix(".ipynb")
    book = nbformat.read(ipynb, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{ipynb.name} has cells that were not executed"
    assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))
    assert ipynb.stat().st_size < 1.5e6, f"{ipynb.name} is over 1.5 MB: make its figures smaller"


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_the_required_parts(py):
    text = py.read_text().lower()
    for part in ("learning goals", "summary", "## exercises"):
        assert part in text, f"{py.name} lacks its {part!r} part"
    assert "import sslkit as sk" in text
    assert "## references" in text and "https://" in text, f"{py.name} lacks references with links"
    # graded exercises: the chapter ends with the student edition of its assignment
    # (chapters/assignments/NN_slug.py, otter-grader's format; tests/test_assign.py checks them)
    assert (py.parent / "assignments" / py.name).exists(), (
        f"{py.name} has no graded exercises: add chapters/assignments/{py.name}")
