"""The exercise section of a book chapter: the student edition's questions, unanswered, without
otter's cells. ``chapters/NN_slug.py`` ends with it (from its ``## Exercises`` cell on); a test
checks that it agrees with the teacher source and :func:`write_book_section` rewrites it."""

from __future__ import annotations

import re
from pathlib import Path

from .runtime import AssignError
from .source import boundary, read_source


def book_section(py: Path) -> list[tuple[str, str]]:
    """(cell_type, source) of the student edition's cells, without otter's init/check cells.

    Raw cells (config and block boundaries) and test cells are dropped; cells of a solution
    block have their solutions replaced by ``...`` with otter's own function.
    """
    from otter.assign.solutions import replace_solutions

    nb = read_source(py)
    out, block = [], []
    for cell in nb.cells:
        b = boundary(cell)
        if b:
            kind, what = b
            if kind == "begin":
                block.append(what)
            elif block and block[-1] == what:
                block.pop()
            continue
        if cell.cell_type == "raw":
            continue  # the ASSIGNMENT CONFIG cell
        if block and block[-1] == "tests":
            continue
        src = cell.source
        if block and block[-1] == "solution" and cell.cell_type == "code":
            src = "\n".join(replace_solutions(src.split("\n"), "python"))
        elif block and block[-1] == "solution":
            continue  # markdown solutions are dropped in the student edition
        out.append((cell.cell_type, src.strip()))
    return out


def chapter_for(py: Path) -> Path:
    """The book chapter ``chapters/NN_slug.py`` of a teacher source."""
    book = py.parent.parent / py.name
    if not book.exists():
        raise AssignError(f"{py.name} has no chapter {book} beside the assignments folder")
    return book


def chapter_section(book_py: Path) -> list[tuple[str, str]]:
    """(cell_type, source) of a chapter's cells from its '## Exercises' markdown cell on."""
    import jupytext

    cells = jupytext.read(book_py).cells
    for i, c in enumerate(cells):
        if c.cell_type == "markdown" and c.source.lstrip().startswith("## Exercises"):
            return [(c.cell_type, c.source.strip()) for c in cells[i:]]
    return []


def write_book_section(py: Path) -> Path:
    """Replace the exercise section of the chapter of ``py`` (from its '## Exercises' cell to
    the end; appended if absent) with :func:`book_section`. Re-sync and re-execute after."""
    import jupytext
    import nbformat

    book = chapter_for(py)
    text = book.read_text()
    marker = re.search(r"^# %% \[markdown\]\n# ## Exercises\b", text, re.M)
    head = text[:marker.start()] if marker else text.rstrip("\n") + "\n\n"
    nb = nbformat.v4.new_notebook()
    for kind, src in book_section(py):
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src))
    body = jupytext.writes(nb, fmt="py:percent")
    body = body[body.index("# %%"):]  # drop jupytext's header
    book.write_text(head + body)
    return book
